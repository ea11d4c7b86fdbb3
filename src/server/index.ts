/** The HTTP API of a node. */
export { type AppOptions, buildApp } from './app.js';
export { errorBody } from './errors.js';
