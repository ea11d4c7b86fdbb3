/** The page style: system fonts only, readable on a laptop screen. (embedded: served as-is by routes/page.ts; no backticks or ${ inside). */
export default `/* System fonts only: nothing is fetched from outside. */
:root {
  --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --muted: #6b7385; --line: #e3e6ec;
  --ok: #1f8f4e; --ok-bg: #e3f5ea; --warn: #a86400; --warn-bg: #fff1d6;
  --bad: #c62f2f; --bad-bg: #fde5e5; --sus: #6b4bb8; --sus-bg: #ece6fa; --accent: #2457c5;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
.mono, code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.strong { font-weight: 600; }
.right { margin-left: auto; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
h2 { font-size: 15px; margin: 0 0 10px; display: flex; align-items: center; gap: 8px; }
h3 { font-size: 14px; margin: 0; }

.top { display: flex; align-items: center; gap: 24px; padding: 10px 20px; background: #1d2330; color: #fff; position: sticky; top: 0; z-index: 2; }
.brand { font-weight: 700; font-size: 17px; letter-spacing: .3px; }
.facts { display: flex; gap: 22px; margin: 0; }
.facts div { display: flex; align-items: baseline; gap: 6px; }
.facts dt { font-size: 11px; text-transform: uppercase; letter-spacing: .6px; color: #aab2c5; }
.facts dd { margin: 0; font-weight: 600; display: flex; gap: 6px; align-items: baseline; }
.facts dd.bad { color: #ff9b9b; }
.live { margin-left: auto; font-size: 12px; padding: 3px 10px; border-radius: 999px; background: #39415a; }
.live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: #aab2c5; }
.live-live::before { background: #3ddc84; }
.live-retrying::before { background: #ff6b6b; }
button.link { background: none; border: 0; color: #aab2c5; cursor: pointer; font: inherit; font-size: 12px; }
.auth { display: flex; gap: 8px; align-items: center; padding: 10px 20px; background: var(--warn-bg); }
.auth { flex-wrap: wrap; }
.auth-message { flex-basis: 100%; margin: 0; font-weight: 600; color: var(--bad); }
.auth-message:empty { display: none; }
.auth[hidden], button[hidden] { display: none; }
.dc-badge { font-size: 12px; font-weight: 600; padding: 1px 8px; border-radius: 999px; background: #dbe6ff; color: #1b3f99; }
.dc-status { font-size: 12px; padding: 1px 8px; border-radius: 999px; }
.dc-alive { background: var(--ok-bg); color: var(--ok); }
.dc-suspect { background: var(--warn-bg); color: var(--warn); }
.dc-unreachable { background: var(--bad-bg); color: var(--bad); }
tr.viewing td:first-child { box-shadow: inset 3px 0 0 var(--accent); }
.small-button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }

.layout { display: grid; grid-template-columns: minmax(0, 1fr) 360px; gap: 16px; padding: 16px 20px; align-items: start; }
.main-col, .side-col { display: flex; flex-direction: column; gap: 16px; min-width: 0; }
.side-col { position: sticky; top: 60px; max-height: calc(100vh - 76px); }
.side-col .card:last-child { overflow: auto; min-height: 120px; contain: content; }
@media (max-width: 1100px) { .layout { grid-template-columns: 1fr; } .side-col { position: static; max-height: none; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.card-head { display: flex; align-items: center; justify-content: space-between; gap: 12px; margin-bottom: 10px; }
.card-head h2 { margin: 0; }
input[type=search], input[type=password] { font: inherit; padding: 5px 9px; border: 1px solid var(--line); border-radius: 6px; width: 240px; }
.empty { color: var(--muted); margin: 4px 0; }
.empty.ok { color: var(--ok); }
.error { color: var(--bad); margin: 0 0 8px; }

table.grid { width: 100%; border-collapse: collapse; }
.grid th { text-align: left; font-size: 11px; text-transform: uppercase; letter-spacing: .5px; color: var(--muted); font-weight: 600; padding: 4px 8px; border-bottom: 1px solid var(--line); }
.grid td { padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
.grid tr:last-child td { border-bottom: 0; }
.grid .num { text-align: right; font-variant-numeric: tabular-nums; }
.grid th.num { text-align: right; }
td.warn { color: var(--warn); font-weight: 600; }
td.bad { color: var(--bad); font-weight: 600; }
tr.is-leader td:first-child { box-shadow: inset 3px 0 0 var(--accent); }
tr.disabled td { opacity: .55; }
.you { margin-left: 6px; font-size: 11px; color: var(--accent); font-family: system-ui, sans-serif; }

.role { font-size: 12px; padding: 1px 8px; border-radius: 999px; background: #e9ecf2; color: var(--ink); }
.role-leader { background: #dbe6ff; color: #1b3f99; font-weight: 600; }
.role-candidate, .role-precandidate { background: var(--warn-bg); color: var(--warn); }
.role-unknown, .role-unreachable { background: var(--bad-bg); color: var(--bad); }
tr.gone td { color: var(--muted); }

/* A fixed box, contained: what changes inside (rows drawn as they scroll into view, or change) never lays out the rest of the page. */
#services { height: min(70vh, var(--list-height, 70vh)); min-height: 60px; overflow-y: auto; overflow-anchor: none; contain: strict; }
.vlist { position: relative; }
.service { position: absolute; left: 0; right: 0; contain: layout paint style; }
.service > header { height: 36px; display: flex; align-items: center; justify-content: space-between; gap: 10px; border-top: 1px solid var(--line); overflow: hidden; }
.chips { display: flex; gap: 6px; flex-wrap: wrap; }
.chip { font-size: 12px; padding: 1px 8px; border-radius: 999px; background: #eef0f4; color: var(--muted); }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 9px; border-radius: 999px; }
.health-healthy { background: var(--ok-bg); color: var(--ok); }
.health-subhealthy { background: var(--warn-bg); color: var(--warn); }
.health-suspect { background: var(--sus-bg); color: var(--sus); }
.health-down { background: var(--bad-bg); color: var(--bad); }
.h-healthy { color: var(--ok); } .h-subhealthy { color: var(--warn); } .h-suspect { color: var(--sus); } .h-down { color: var(--bad); }
/* Every row exactly ROW_PX (46 px) high, the column titles 28 px (view-services.ts): the list is virtual. */
.irow { display: grid; grid-template-columns: 17% 8% 13% 7% 20% 30% 5%; height: 46px; overflow: hidden; border-bottom: 1px solid var(--line); align-items: center; contain: strict; }
.irow > div { padding: 0 8px; min-width: 0; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; max-height: 46px; }
.irow > div > div { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.irow .num { text-align: right; font-variant-numeric: tabular-nums; }
.irow.cols { height: 28px; font-size: 11px; text-transform: uppercase; letter-spacing: .5px; color: var(--muted); font-weight: 600; }
.irow.disabled > div { opacity: .55; }
.tag, .kv { display: inline-flex; margin: 0 4px 3px 0; font-size: 12px; border: 1px solid var(--line); border-radius: 4px; padding: 0 6px; max-width: 280px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tag { background: #f0f4ff; border-color: #d9e2fb; }
.kv .k { color: var(--muted); }
.kv .k::after { content: "="; margin-right: 2px; }
.calls { display: flex; gap: 8px; align-items: baseline; }
.pending { color: var(--warn); }
.meters { display: flex; gap: 10px; margin-top: 3px; }
.metric { font-size: 12px; font-variant-numeric: tabular-nums; }
.metric.bad { color: var(--bad); font-weight: 600; }
.bar { display: inline-flex; align-items: center; gap: 3px; font-size: 11px; color: var(--muted); white-space: nowrap; }
.bar-track { width: 28px; height: 6px; background: #eef0f4; border-radius: 3px; overflow: hidden; }
.bar-fill { display: block; height: 100%; border-radius: 3px; }
.bar-fill.ok { background: #57b67f; } .bar-fill.warn { background: #e0a030; } .bar-fill.bad { background: #e05252; }
.bar-value { font-variant-numeric: tabular-nums; color: var(--ink); }
.bar-value.bad { color: var(--bad); font-weight: 600; }

.count { font-size: 12px; min-width: 20px; text-align: center; border-radius: 999px; background: var(--bad); color: #fff; padding: 0 6px; }
.count:empty { display: none; }
ul.alerts { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 8px; }
.alert { border-left: 4px solid var(--warn); background: var(--warn-bg); padding: 6px 10px; border-radius: 4px; }
.alert.sev-critical { border-color: var(--bad); background: var(--bad-bg); }
.alert-head { display: flex; gap: 8px; align-items: baseline; margin-bottom: 2px; }
.sev { font-size: 11px; text-transform: uppercase; font-weight: 700; letter-spacing: .5px; }
.sev-critical .sev { color: var(--bad); } .sev-warning .sev { color: var(--warn); }

ul.overrides { list-style: none; margin: 0 0 8px; padding: 0; }
.overrides li { padding: 4px 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
.overrides .scope { font-weight: 600; }
table.policy td, table.policy th { padding: 3px 6px; }
ol.feed { list-style: none; margin: 0; padding: 0; }
.feed li { padding: 5px 0; border-bottom: 1px solid var(--line); }
.feed-head { display: flex; gap: 8px; align-items: baseline; }
.feed .change { margin-left: auto; }
.feed .rev { color: var(--accent); }
.feed .key { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; margin-top: 1px; }
.cause { font-size: 11px; padding: 0 6px; border-radius: 4px; background: #eef0f4; }
.cause-delete { background: var(--bad-bg); color: var(--bad); }
`;
