// The virtual device: the firmware in the real MicroPython VM (WebAssembly port), behind a serial
// byte stream. host_tools/ovenctl/vdev.py bridges this process's stdin/stdout to a pseudo-terminal.
//
//   node vdev.mjs --fs DIR [--speed N] [--scenario JSON] [--heap KB]
//
// stdin  = bytes the host sends on the serial port (RX), stdout = bytes the device sends (TX),
// stderr = diagnostics ("vdev: ..."). EOF on stdin is a power cut: the process exits at once.
//
// What it emulates:
// - Flash: the VM's filesystem (emscripten MEMFS) is mirrored to the host directory --fs with
//   littlefs semantics: file data reaches the host at flush()/close() (lfs_file_sync); metadata
//   (create, mkdir, remove, rename) at once. A kill loses exactly the unsynced tail.
// - Boot: /boot.py, then main.py (the device's /main.py if present, else the firmware's), then
//   the REPL. Firmware modules are "frozen" in /rom (not part of the flash). If main.py leaves a
//   running test (board_select.host_session), this process drives it: it calls
//   session.advance(k) at --speed simulated seconds per wall second (0 = as fast as possible) and
//   feeds received bytes into the device's receive FIFO between calls; the firmware's link
//   answers them once per control tick. When the test ends the device drops to the REPL.
// - REPL shims for the real `mpremote` (docs in /work/shared/MICROPYTHON-VM.md):
//   raw-paste refusal (answers "R\x00" to "\x05A\x01"), soft reset (Ctrl-D on an empty line:
//   files synced, the VM is re-created from the flash, "MPY: soft reboot" printed; main.py runs
//   again in friendly mode, the raw REPL is re-entered in raw mode), errno translation (WASI
//   errno numbers in "OSError: N" become MicroPython's numbers).
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
let fsDir = null;
let speed = 600;
let scenario = "";
let heapKb = 8192;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--fs") fsDir = path.resolve(argv[++i]);
  else if (a === "--speed") speed = parseFloat(argv[++i]);
  else if (a === "--scenario") scenario = argv[++i];
  else if (a === "--heap") heapKb = parseInt(argv[++i], 10);
  else { console.error("vdev: unexpected argument " + a); process.exit(2); }
}
if (!fsDir || !(speed >= 0)) { console.error("usage: vdev.mjs --fs DIR [--speed N] [--scenario JSON] [--heap KB]"); process.exit(2); }
fs.mkdirSync(fsDir, { recursive: true });

const diag = (s) => process.stderr.write("vdev: " + s + "\n");

// VM-internal top-level directories: not part of the device's flash
const NOT_FLASH = new Set(["dev", "proc", "tmp", "home", "rom"]);

// WASI errno -> MicroPython (py/mperrno.h, Linux numbering)
const WASI_TO_MP = {
  1: 7, 2: 13, 3: 98, 4: 99, 5: 97, 6: 11, 7: 114, 8: 9, 10: 16, 11: 125, 12: 10, 13: 103, 14: 111,
  15: 104, 16: 35, 18: 33, 19: 122, 20: 17, 21: 14, 22: 27, 23: 113, 26: 115, 27: 4, 28: 22, 29: 5,
  30: 106, 31: 21, 32: 40, 33: 24, 34: 31, 36: 72, 37: 36, 41: 23, 42: 105, 43: 19, 44: 2, 45: 8,
  48: 12, 51: 28, 52: 38, 53: 107, 54: 20, 55: 39, 58: 95, 59: 25, 60: 6, 61: 75, 63: 1, 64: 32,
  68: 34, 69: 30, 70: 29, 71: 3, 73: 110, 74: 26, 75: 18,
};

// ------------------------------------------------------------------------------------------ TX
let txParts = [];
let txErrnoFrom = -1;     // index in the pending output from which errno text is translated
function tx(buf) { txParts.push(buf); }
function txText(s) { tx(Buffer.from(s, "latin1")); }
function translateErrno(b) {
  const s = b.toString("latin1");
  const t = s.replace(/OSError: (\d+)/g, (m, n) => "OSError: " + (WASI_TO_MP[n] ?? n))
    .replace(/\[Errno (\d+)\]/g, (m, n) => "[Errno " + (WASI_TO_MP[n] ?? n) + "]");
  return t === s ? b : Buffer.from(t, "latin1");
}
function flushTx(translate) {
  if (!txParts.length) return;
  let b = txParts.length === 1 ? txParts[0] : Buffer.concat(txParts);
  txParts = [];
  if (translate) {
    // raw REPL: "OK" stdout \x04 stderr \x04 ">": only the error part is text to translate
    const cut = rawMode ? b.indexOf(4) : 0;
    if (cut >= 0) b = Buffer.concat([b.subarray(0, cut), translateErrno(b.subarray(cut))]);
  }
  writeOut(b);
}
// process.stdout is synchronous for pipes on Linux and keeps the order everywhere
function writeOut(b) { process.stdout.write(b); }
process.stdout.on("error", () => process.exit(0));   // the host side is gone

// ------------------------------------------------------------------------------------------ flash mirror
let mirrorOn = false;
function hostOf(vmPath) {
  const parts = vmPath.split("/").filter(Boolean);
  if (!parts.length || NOT_FLASH.has(parts[0])) return null;
  if (parts.some((p) => p === ".." || p === ".")) return null;
  return path.join(fsDir, ...parts);
}

function installMirror(mp) {
  const FS = mp.FS;
  const dirty = new Map();                 // MEMFS node -> lowest unsynced offset
  let fileOpsPatched = false;

  function markDirty(node, pos) {
    const lo = dirty.get(node);
    if (lo === undefined || pos < lo) dirty.set(node, pos);
  }
  function syncNode(node) {
    const lo = dirty.get(node);
    if (lo === undefined) return;
    dirty.delete(node);
    let p;
    try { p = FS.getPath(node); } catch (e) { return; }
    const h = hostOf(p);
    if (!h) return;
    const size = node.usedBytes | 0;
    let fd;
    try { fd = fs.openSync(h, fs.existsSync(h) ? "r+" : "w"); }
    catch (e) { diag("flash write failed: " + h + ": " + e.message); return; }
    try {
      if (lo < size) {
        const c = node.contents;
        const part = c.subarray ? c.subarray(lo, size) : Uint8Array.from(c.slice(lo, size));
        fs.writeSync(fd, part, 0, part.length, lo);
      }
      fs.ftruncateSync(fd, size);
    } finally { fs.closeSync(fd); }
  }
  function syncAll() { for (const node of [...dirty.keys()]) syncNode(node); }
  function patchFileOps(ops) {
    const w = ops.write;
    ops.write = function (stream, buffer, offset, length, position, canOwn) {
      const r = w.call(this, stream, buffer, offset, length, position, canOwn);
      if (mirrorOn) markDirty(stream.node, position);
      return r;
    };
    ops.fsync = function (stream) { if (mirrorOn) syncNode(stream.node); return 0; };
  }
  const exists = (p) => { try { FS.lookupPath(p); return true; } catch (e) { return false; } };

  const open = FS.open;
  FS.open = function (p, flags, mode) {
    const existed = typeof p === "string" ? exists(p) : true;
    const st = open.call(this, p, flags, mode);
    if (st.node && FS.isFile(st.node.mode)) {
      if (!fileOpsPatched) { patchFileOps(st.stream_ops); fileOpsPatched = true; }
      if (mirrorOn && !existed) {
        // littlefs commits a new directory entry at open
        const h = hostOf(FS.getPath(st.node));
        if (h) { try { fs.closeSync(fs.openSync(h, "a")); } catch (e) { diag("create failed: " + e.message); } }
      }
    }
    return st;
  };
  const close = FS.close;
  FS.close = function (stream) {
    if (mirrorOn && stream.node && dirty.has(stream.node)) syncNode(stream.node);
    return close.call(this, stream);
  };
  const truncate = FS.truncate;
  FS.truncate = function (p, len) {
    const r = truncate.call(this, p, len);
    if (mirrorOn) {
      const node = typeof p === "string" ? FS.lookupPath(p, { follow: true }).node : p;
      if (FS.isFile(node.mode)) markDirty(node, len);
    }
    return r;
  };
  const ftruncate = FS.ftruncate;
  FS.ftruncate = function (fd, len) {
    const r = ftruncate.call(this, fd, len);
    if (mirrorOn) { const st = FS.getStream(fd); if (st && st.node) markDirty(st.node, len); }
    return r;
  };
  const mkdir = FS.mkdir;
  FS.mkdir = function (p, mode) {
    const r = mkdir.call(this, p, mode);
    if (mirrorOn) { const h = hostOf(FS.getPath(r)); if (h) fs.mkdirSync(h, { recursive: true }); }
    return r;
  };
  const rmdir = FS.rmdir;
  FS.rmdir = function (p) {
    const abs = FS.getPath(FS.lookupPath(p).node);
    const r = rmdir.call(this, p);
    if (mirrorOn) { const h = hostOf(abs); if (h) { try { fs.rmdirSync(h); } catch (e) { } } }
    return r;
  };
  const unlink = FS.unlink;
  FS.unlink = function (p) {
    const node = FS.lookupPath(p).node;
    const abs = FS.getPath(node);
    const r = unlink.call(this, p);
    dirty.delete(node);
    if (mirrorOn) { const h = hostOf(abs); if (h) { try { fs.unlinkSync(h); } catch (e) { } } }
    return r;
  };
  const rename = FS.rename;
  FS.rename = function (a, b) {
    let absA = null;
    try { const n = FS.lookupPath(a).node; absA = FS.getPath(n); if (mirrorOn) syncNode(n); } catch (e) { }
    const r = rename.call(this, a, b);
    if (mirrorOn && absA) {
      const absB = FS.getPath(FS.lookupPath(b).node);
      const ha = hostOf(absA), hb = hostOf(absB);
      if (ha && hb) { try { fs.renameSync(ha, hb); } catch (e) { diag("rename failed: " + e.message); } }
    }
    return r;
  };
  return { syncAll };
}

function loadFlash(FS, hostDir, vmDir) {
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (vmDir === "" && NOT_FLASH.has(ent.name)) continue;
    const h = path.join(hostDir, ent.name);
    const v = vmDir + "/" + ent.name;
    if (ent.isDirectory()) { try { FS.mkdir(v); } catch (e) { } loadFlash(FS, h, v); }
    else if (ent.isFile()) FS.writeFile(v, fs.readFileSync(h));
  }
}

function copyRom(FS, hostDir, vmDir) {
  try { FS.mkdir(vmDir); } catch (e) { }
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (ent.name === "__pycache__" || ent.name.startsWith(".")) continue;
    const h = path.join(hostDir, ent.name);
    const v = vmDir + "/" + ent.name;
    if (ent.isDirectory()) copyRom(FS, h, v);
    else if (ent.name.endsWith(".py") || ent.name.endsWith(".json")) FS.writeFile(v, fs.readFileSync(h));
  }
}

// ------------------------------------------------------------------------------------------ the VM
let mp = null;
let flash = null;
let rawMode = false;
let powerOn = true;

async function createVM() {
  const m = await loadMicroPython({ heapsize: heapKb * 1024, stdout: (b) => tx(Buffer.from(b)),
                                    stderr: (b) => tx(Buffer.from(b)), linebuffer: false });
  // console output in bulk (the TTY device would call back once per byte)
  const ops = Object.assign({}, m.FS.getStream(1).stream_ops);
  ops.write = (stream, buffer, offset, length) => { tx(Buffer.from(buffer.subarray(offset, offset + length))); return length; };
  m.FS.getStream(1).stream_ops = ops;
  m.FS.getStream(2).stream_ops = ops;
  for (const d of ["/tmp", "/home/web_user", "/home"]) { try { m.FS.rmdir(d); } catch (e) { } }
  mirrorOn = false;
  try { m.FS.mkdir("/rom"); } catch (e) { }
  copyRom(m.FS, path.join(ROOT, "firmware"), "/rom/firmware");
  copyRom(m.FS, path.join(ROOT, "boards"), "/rom/boards");
  m.FS.writeFile("/rom/board_select.py", fs.readFileSync(path.join(ROOT, "boards", "sim", "vdev.py")));
  flash = installMirror(m);
  loadFlash(m.FS, fsDir, "");
  mirrorOn = true;
  m.registerJsModule("vdevcfg", { scenario, autostart: powerOn && scenario !== "", speed });
  m.runPython("import sys\nsys.path[:] = ['', '.frozen', '/lib', '/rom/firmware', '/rom/boards', '/rom']\n");
  mp = m;
}

function pyError(e) {
  if (e && e.name === "PythonError") return String(e.message).replace(/\r?\n/g, "\r\n");
  throw e;
}

function vmExists(p) { try { mp.FS.lookupPath(p); return true; } catch (e) { return false; } }

async function runFile(p) {
  const code = new TextDecoder().decode(mp.FS.readFile(p));
  try { await mp.runPythonAsync(code); }
  catch (e) { txText(pyError(e)); }
  flushTx(false);
}

async function boot(raw) {
  mode = "boot";
  if (vmExists("/boot.py")) await runFile("/boot.py");
  if (!raw) await runFile(vmExists("/main.py") ? "/main.py" : "/rom/firmware/main.py");
  powerOn = false;
  let sess = null;
  try {
    mp.runPython("import sys\n_vdev_s = sys.modules.get('board_select')\n_vdev_s = getattr(_vdev_s, 'host_session', None) if _vdev_s else None\n");
    sess = mp.globals.get("_vdev_s");
    mp.runPython("del _vdev_s\n");
  } catch (e) { txText(pyError(e)); }
  if (sess) await runSession(sess);
  mode = "repl";
  rawMode = false;
  if (raw) {
    mp.replInit();
    txParts = [];                           // no banner: straight back into the raw REPL
    await mp.replProcessCharWithAsyncify(1);
    rawMode = true;
  } else {
    mp.replInit();
  }
  flushTx(false);
}

// ------------------------------------------------------------------------------------------ RX
let rxQ = [];                               // Buffers received, not yet consumed
let rxLen = 0;
let mode = "boot";                          // "boot" | "run" | "repl"
let pumping = false;

process.stdin.on("data", (d) => { rxQ.push(d); rxLen += d.length; if (mode === "repl") pumpRepl(); });
process.stdin.on("end", () => { process.exit(0); });   // the host side is gone: power cut
process.on("SIGTERM", () => { try { if (flash) flash.syncAll(); } catch (e) { } process.exit(0); });

function takeRx(max) {
  const parts = [];
  let n = 0;
  while (rxQ.length && n < max) {
    const b = rxQ[0];
    const k = Math.min(b.length, max - n);
    parts.push(b.subarray(0, k));
    n += k;
    if (k === b.length) rxQ.shift(); else rxQ[0] = b.subarray(k);
  }
  rxLen -= n;
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------------------------------ run mode
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const yieldLoop = () => new Promise((r) => setImmediate(r));

async function runSession(sess) {
  mode = "run";
  const bs = mp.pyimport("board_select");
  const advance = sess.advance;
  const feed = bs.rx_feed_hex;
  const room = bs.rx_room;
  let k = 20;
  let ticks = 0;
  let t0 = performance.now();
  flushTx(false);
  for (;;) {
    if (rxLen) {
      const r = room();
      if (r > 0) { const b = takeRx(r); if (b.length) feed(b.toString("hex")); }
    }
    let want = k;
    if (speed > 0) {
      const elapsed = performance.now() - t0;
      let due = Math.floor(elapsed * speed / 1000) - ticks;
      if (due > 20 * speed + 1000) { t0 = performance.now() - ticks * 1000 / speed; due = 1; }  // fell far behind: re-anchor
      if (due <= 0) {
        flushTx(false);
        const waitMs = (ticks + 1) * 1000 / speed - elapsed;
        await sleep(Math.max(1, Math.min(waitMs, 20)));
        continue;
      }
      want = Math.min(due, k);
    }
    const ts = performance.now();
    let r;
    try { r = advance(want); }
    catch (e) { txText("\r\n" + pyError(e)); r = -1; }
    flushTx(false);
    if (r < 0) break;
    ticks += r;
    const dt = performance.now() - ts;
    if (dt < 5 && r === want) k = Math.min(k * 2, 4000);
    else if (dt > 20) k = Math.max(1, Math.floor(k / 2));
    await yieldLoop();
  }
  if (flash) flash.syncAll();
  diag("test ended; device idle (REPL)");
}

// ------------------------------------------------------------------------------------------ REPL mode
let pasteHold = [];                          // held bytes of a possible raw-paste request "\x05A\x01"

async function replChar(c) {
  let r;
  if (c === 4 || c === 13 || c === 10) r = await mp.replProcessCharWithAsyncify(c);
  else r = mp.replProcessChar(c);           // accumulating/editing characters execute nothing
  const pending = txParts.length ? Buffer.concat(txParts) : null;
  if (pending && pending.includes("raw REPL; CTRL-B to exit")) rawMode = true;
  if (r) {
    // Ctrl-D on an empty line: soft reset (the VM printed "OK\r\n" in raw mode, "\r\n" otherwise)
    const raw = rawMode;
    flushTx(true);
    txText("MPY: soft reboot\r\n");
    flushTx(false);
    if (flash) flash.syncAll();               // files are closed (synced) by the reset
    await createVM();
    await boot(raw);
    return;
  }
  if (c === 2 && rawMode) rawMode = false;
  flushTx(true);
}

async function pumpRepl() {
  if (pumping) return;
  pumping = true;
  try {
    while (mode === "repl" && rxLen) {
      const b = takeRx(4096);
      for (let i = 0; i < b.length; i++) {
        const c = b[i];
        if (mode !== "repl") { rxQ.unshift(b.subarray(i)); rxLen += b.length - i; break; }
        if (rawMode && (pasteHold.length || c === 5)) {
          pasteHold.push(c);
          const want = [5, 0x41, 1];
          if (pasteHold.every((x, j) => x === want[j])) {
            if (pasteHold.length === 3) { pasteHold = []; txText("R\x00"); flushTx(false); }
            continue;
          }
          const held = pasteHold; pasteHold = [];
          for (const h of held) await replChar(h);
          continue;
        }
        await replChar(c);
      }
    }
  } finally { pumping = false; }
}

// ------------------------------------------------------------------------------------------ power on
await createVM();
diag("powered on (flash " + fsDir + (scenario ? ", scenario at " + (speed || "max") + " sim s per s" : "") + ")");
await boot(false);
if (rxLen) pumpRepl();
