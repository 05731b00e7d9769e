// Builds the console into the gateway's package data (ADR 0052):
//   src/main.js   -> console.js  (ES module; its CSS imports -> console.css)
//   src/report.js -> report.js   (an IIFE, global WaylineReport, inlined by `wayline report`; -> report.css)
//   src/index.html copied as it is.
// Minified, no source maps, target ES2020: the output depends only on the sources and the locked versions,
// so tests/console/test_bundle.py can rebuild it and compare bytes.
//
//   node build.mjs                 write into services/gateway/src/wayline_gateway/console/static/
//   node build.mjs --outdir DIR    write into DIR instead (the freshness test; WAYLINE_CONSOLE_OUTDIR too)
//   node build.mjs --dev           unminified with inline source maps, for debugging (never commit it)

import { copyFile, mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const defaultOutdir = path.resolve(here, "../services/gateway/src/wayline_gateway/console/static");

function parseArguments(argv) {
  const options = { outdir: process.env.WAYLINE_CONSOLE_OUTDIR || defaultOutdir, dev: false };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    if (argument === "--dev") options.dev = true;
    else if (argument === "--outdir") options.outdir = argv[++index];
    else if (argument.startsWith("--outdir=")) options.outdir = argument.slice("--outdir=".length);
    else throw new Error(`unknown argument ${argument}`);
  }
  if (!options.outdir) throw new Error("--outdir needs a directory");
  options.outdir = path.resolve(options.outdir);
  return options;
}

// The files a build writes; anything else in the output folder is stale and removed.
const OUTPUTS = new Set(["console.js", "console.css", "report.js", "report.css", "index.html"]);

async function removeStale(outdir) {
  for (const entry of await readdir(outdir, { withFileTypes: true })) {
    if (entry.isFile() && !OUTPUTS.has(entry.name)) await rm(path.join(outdir, entry.name));
  }
}

const { outdir, dev } = parseArguments(process.argv.slice(2));
await mkdir(outdir, { recursive: true });

const common = {
  absWorkingDir: here,
  bundle: true,
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  target: "es2020",
  charset: "utf8",
  legalComments: "eof",
  logLevel: "warning",
  outdir,
  define: { "process.env.NODE_ENV": '"production"' },
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: { console: "src/main.js" }, format: "esm" }),
  esbuild.build({
    ...common,
    entryPoints: { report: "src/report.js" },
    format: "iife",
    globalName: "WaylineReport",
  }),
]);
await copyFile(path.join(here, "src/index.html"), path.join(outdir, "index.html"));
await removeStale(outdir);
