// Layers written by real archivers, GNU tar (SCHILY.xattr.*) and libarchive's bsdtar (both
// LIBARCHIVE.xattr.* and SCHILY.xattr.*), unpack with nodes and xattrs identical to the source
// tree; and an xattr name that really exists on a host file (newlines and a "# file:" line,
// which either tool archives faithfully) is refused when unpacked, naming entry and attribute.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { unpackLayer } from "./unpack.ts";

const sh = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
/** Every xattr under `root`, relative names, hex values, symlinks not followed. */
const dump = (root: string, rel: string) => sh("getfattr", ["-h", "-d", "-m", "-", "-e", "hex", rel], root);

const archivers: Record<string, (src: string, out: string) => void> = {
  "GNU tar": (src, out) => { sh("tar", ["--xattrs", "--xattrs-include=*", "--format=posix", "-cf", out, "."], src); },
  "bsdtar": (src, out) => { sh("bsdtar", ["--format", "pax", "--xattrs", "-cf", out, "."], src); },
};

describe("layers from real archivers", () => {
  let dir: string;
  let src: string;
  let evilSrc: string;
  let victim: string;
  let victimDump: string;
  const evilName = () => `user.a\n\n# file: ${victim}\nuser.pwned`;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-real-tar-"));
    src = path.join(dir, "src");
    await mkdir(path.join(src, "d"), { recursive: true });
    await writeFile(path.join(src, "d", "f"), "hello\n");
    sh("setfattr", ["-n", "user.a", "-v", "x y", path.join(src, "d", "f")]);
    sh("setfattr", ["-n", "user.bin", "-v", "0x00ff0a", path.join(src, "d", "f")]);
    sh("setcap", ["cap_net_bind_service=ep", path.join(src, "d", "f")]);
    sh("setfattr", ["-n", "user.dir", "-v", "on dir", path.join(src, "d")]);
    sh("setfattr", ["-n", "user.with space", "-v", "s", path.join(src, "d", "f")]);
    sh("mkfifo", ["-m", "0620", path.join(src, "d", "p")]);
    sh("mknod", ["-m", "0666", path.join(src, "d", "null"), "c", "1", "3"]);
    sh("ln", ["-s", "f", path.join(src, "d", "l")]);
    sh("ln", [path.join(src, "d", "f"), path.join(src, "d", "h")]);
    victim = path.join(dir, "victim");
    await writeFile(victim, "untouched");
    sh("setfattr", ["-n", "user.keep", "-v", "1", victim]);
    victimDump = sh("getfattr", ["--absolute-names", "-d", "-m", "-", "-e", "hex", victim]);
    evilSrc = path.join(dir, "evil");
    await mkdir(evilSrc);
    await writeFile(path.join(evilSrc, "f"), "x");
    sh("setfattr", ["-n", evilName(), "-v", "1", path.join(evilSrc, "f")]);
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  for (const [tool, archive] of Object.entries(archivers)) {
    it(`${tool}: devices, FIFOs, links, security.capability and user.* xattrs come out as they went in`, async () => {
      const tar = path.join(dir, `${tool}.tar`);
      archive(src, tar);
      const out = path.join(dir, `out-${tool.replace(/ /g, "-")}`);
      await mkdir(out);
      await unpackLayer(createReadStream(tar), "none", out);
      for (const rel of ["d", "d/f"]) assert.equal(dump(out, rel), dump(src, rel), `${tool}: xattrs of ${rel}`);
      assert.match(dump(out, "d/f"), /security\.capability=0x/);
      const nul = await lstat(path.join(out, "d/null"));
      assert.ok(nul.isCharacterDevice());
      assert.equal(nul.rdev, (1 << 8) | 3);
      const fifo = await lstat(path.join(out, "d/p"));
      assert.ok(fifo.isFIFO());
      assert.equal(fifo.mode & 0o777, 0o620);
      assert.ok((await lstat(path.join(out, "d/l"))).isSymbolicLink());
      assert.equal((await lstat(path.join(out, "d/h"))).ino, (await lstat(path.join(out, "d/f"))).ino);
    });

    it(`${tool}: a host file's real xattr name with newlines and a "# file:" line is refused, naming entry and attribute`, async () => {
      const tar = path.join(dir, `${tool}-evil.tar`);
      archive(evilSrc, tar);
      const out = path.join(dir, `evil-out-${tool.replace(/ /g, "-")}`);
      await mkdir(out);
      await assert.rejects(unpackLayer(createReadStream(tar), "none", out), (e: Error) => {
        assert.ok(e.message.includes('entry "./f"') && e.message.includes(JSON.stringify(evilName())), e.message);
        return true;
      });
      assert.equal(sh("getfattr", ["--absolute-names", "-d", "-m", "-", "-e", "hex", victim]), victimDump);
      assert.deepEqual(await readdir(out), [], "refused at the header, before the file was written");
    });
  }
});
