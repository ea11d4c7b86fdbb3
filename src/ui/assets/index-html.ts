/** The page skeleton; the script fills in the sections. (embedded: served as-is by routes/page.ts; no backticks or ${ inside). */
export default `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rollcall</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/assets/app.css">
<script type="module" src="/ui/assets/app.js"></script>
</head>
<body>
<header class="top">
  <div class="brand">Rollcall</div>
  <dl class="facts">
    <div><dt>Node</dt><dd id="node" class="value">…</dd></div>
    <div><dt>Leader</dt><dd id="leader" class="value" data-testid="leader">…</dd></div>
    <div><dt>Term</dt><dd id="term" class="value">…</dd></div>
    <div><dt>Revision</dt><dd id="revision" class="value mono">…</dd></div>
    <div><dt>Cluster version</dt><dd id="cluster-version" class="value" data-testid="cluster-version">…</dd></div>
  </dl>
  <span id="watch" class="live live-connecting">connecting…</span>
  <span id="token-who" class="muted small" data-testid="token-who" hidden></span>
  <label id="namespace-pick" class="small" hidden>Namespace <select id="namespace" data-testid="namespace"></select></label>
  <button id="signout" type="button" class="link" hidden>forget token</button>
</header>
<form id="auth" class="auth" hidden>
  <p id="auth-message" class="auth-message" role="alert" data-testid="auth-message"></p>
  <label for="token">Access token:</label>
  <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" placeholder="paste a token">
  <button type="submit">Use token</button>
  <span class="muted small">Kept in this tab only (sessionStorage), sent as Authorization: Bearer.</span>
</form>
<main class="layout">
  <div class="main-col">
    <section class="card">
      <h2>Cluster</h2>
      <div id="cluster"></div>
    </section>
    <section class="card">
      <h2>Datacenters</h2>
      <div id="datacenters"></div>
    </section>
    <section class="card">
      <div class="card-head">
        <h2>Services <span id="services-dc"></span> <span id="services-count" class="muted small"></span></h2>
        <input id="filter" type="search" placeholder="Filter…" aria-label="Filter">
      </div>
      <div id="services"></div>
    </section>
  </div>
  <aside class="side-col">
    <section class="card">
      <h2>Alerts <span id="alerts-count" class="count"></span></h2>
      <div id="alerts"></div>
    </section>
    <section class="card">
      <h2>Health policy <span id="policy-rev" class="muted small"></span></h2>
      <div id="policy"></div>
    </section>
    <section class="card">
      <h2>Live changes</h2>
      <div id="feed"></div>
    </section>
  </aside>
</main>
</body>
</html>
`;
