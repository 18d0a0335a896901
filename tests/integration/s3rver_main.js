#!/usr/bin/env node
'use strict';
// Starts s3rver's own command line (same arguments) in a process that
// survives s3rver's unhandled errors. Its file store races with itself: a
// DeleteObjects that empties a directory while a PUT writes into it throws an
// ENOENT nobody catches, which would kill the server in the middle of a test.
// Such an error is logged to stderr and the server goes on; the request that
// hit it fails (or times out) and the client retries, as it would against a
// real store that answered 500.
process.on('uncaughtException', (err) => {
  console.error('s3rver: uncaught exception (server kept running):', err && err.stack ? err.stack : err);
});
process.on('unhandledRejection', (err) => {
  console.error('s3rver: unhandled rejection (server kept running):', err && err.stack ? err.stack : err);
});
require('./node_modules/s3rver/bin/s3rver.js');
