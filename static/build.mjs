// Bundles the embeddable chat widget, the demo app and the team console
// (/admin) with esbuild.
//
// Usage: node static/build.mjs [--outdir <dir>]
//   --outdir  where widget.js, demo.js and console.js are written (default: static/dist).
//             The Rust build script passes an absolute path under cargo's OUT_DIR.
//
// Everything comes from npm (socket.io-client, posthog-js, chart.js); nothing is fetched
// from a CDN at runtime and no bundle is committed.
import { build } from 'esbuild';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  let outdir = path.join(here, 'dist');
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--outdir') {
      const value = argv[i + 1];
      if (!value || value.startsWith('--')) {
        throw new Error('--outdir needs a directory argument');
      }
      outdir = path.resolve(value);
      i += 1;
    } else if (arg.startsWith('--outdir=')) {
      outdir = path.resolve(arg.slice('--outdir='.length));
    } else {
      throw new Error(`unknown argument: ${arg}`);
    }
  }
  return { outdir };
}

const common = {
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2019',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

async function main() {
  const { outdir } = parseArgs(process.argv.slice(2));
  await Promise.all([
    build({
      ...common,
      entryPoints: [path.join(here, 'src', 'widget.js')],
      outfile: path.join(outdir, 'widget.js'),
      globalName: 'CopilotWidget',
    }),
    build({
      ...common,
      entryPoints: [path.join(here, 'src', 'demo.js')],
      outfile: path.join(outdir, 'demo.js'),
    }),
    build({
      ...common,
      entryPoints: [path.join(here, 'src', 'console.js')],
      outfile: path.join(outdir, 'console.js'),
    }),
  ]);
  console.log(`static/build.mjs: wrote widget.js, demo.js and console.js to ${outdir}`);
}

main().catch((err) => {
  console.error(`static/build.mjs: build failed: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
