// Run Python code inside the real MicroPython VM (WebAssembly port) and set the exit code.
//
//   node host_tools/ovenctl/vm/mprun.mjs [--heap KB] [--path DIR ...] [--arg STR] FILE.py
//
// Every --path DIR (relative to the repo root) is copied into the VM filesystem at /DIR and
// /DIR itself is appended to sys.path: `--path firmware` makes `from oven.core import verdict` work as on a
// device where the firmware package sits in /lib/oven. The Python file's text is executed as __main__. sys.argv-like data is exposed as
// the JS module `hostargs` (hostargs.arg is the --arg string, or "").
// Exit codes: 0 ok, 1 uncaught Python exception (type and message on stderr), 2 usage.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
let heapKb = 512;
const dirs = [];
let arg = "";
let file = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--heap") heapKb = parseInt(argv[++i], 10);
  else if (a === "--path") dirs.push(argv[++i]);
  else if (a === "--arg") arg = argv[++i];
  else if (file === null) file = a;
  else { console.error("mprun: unexpected argument " + a); process.exit(2); }
}
if (!file) { console.error("usage: mprun.mjs [--heap KB] [--path DIR] [--arg STR] FILE.py"); process.exit(2); }

function copyTree(FS, hostDir, vmDir) {
  try { FS.mkdir(vmDir); } catch (e) { /* exists */ }
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (ent.name === "__pycache__" || ent.name.startsWith(".")) continue;
    const h = path.join(hostDir, ent.name);
    const v = vmDir + "/" + ent.name;
    if (ent.isDirectory()) copyTree(FS, h, v);
    else if (ent.name.endsWith(".py") || ent.name.endsWith(".json")) FS.writeFile(v, fs.readFileSync(h));
  }
}

const out = (s) => process.stdout.write(s);
const mp = await loadMicroPython({ heapsize: heapKb * 1024, stdout: out, stderr: out, linebuffer: false });
const sysPath = [];
for (const d of dirs) {
  const host = path.resolve(root, d);
  const vm = "/" + path.relative(root, host);
  const parts = vm.split("/").filter(Boolean);
  let cur = "";
  for (const p of parts.slice(0, -1)) { cur += "/" + p; try { mp.FS.mkdir(cur); } catch (e) { } }
  copyTree(mp.FS, host, vm);
  sysPath.push(vm);
}
mp.registerJsModule("hostargs", { arg });
const code = fs.readFileSync(file, "utf8");
const prelude = "import sys\n" + [...new Set(sysPath)].map((p) => `sys.path.append(${JSON.stringify(p)})\n`).join("");
try {
  mp.runPython(prelude);
  await mp.runPythonAsync(code);
} catch (e) {
  process.stdout.write("");
  console.error(`mprun: ${e.type || e.name}: ${e.message}`);
  process.exit(1);
}
process.exit(0);
