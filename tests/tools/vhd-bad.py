#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile VHD images for tests/integration/vhd-bad.t.

    vhd-bad.py DIR VSTOR

Makes base images in DIR (a dynamic and a fixed one with qemu-img and
qemu-io, a differencing one with `VSTOR img create -b`), then one
malformed copy per case (fields poked big-endian, as the VHD spec lays
them out; checksums recomputed unless the case is about them), and
prints one line per case, tab-separated:

    NAME  REGEX

Every case must be refused when it is opened (`vstor img info -f vpc`
and a read with vbd-io both fail), with an error that names the file and
matches REGEX (bash ERE).
"""
import os
import struct
import subprocess
import sys

SECTOR = 512
MB = 1 << 20

# Footer fields: (offset, struct format).
F = {
    "cookie": (0, "8s"), "features": (8, "I"), "version": (12, "I"),
    "data_offset": (16, "Q"), "timestamp": (24, "I"), "app": (28, "4s"),
    "orig_size": (40, "Q"), "cur_size": (48, "Q"), "cyls": (56, "H"),
    "heads": (58, "B"), "secs": (59, "B"), "type": (60, "I"),
    "checksum": (64, "I"), "uuid": (68, "16s"),
}
# Dynamic header fields, from the header's start.
H = {
    "cookie": (0, "8s"), "table_offset": (16, "Q"), "version": (24, "I"),
    "max_entries": (28, "I"), "block_size": (32, "I"), "checksum": (36, "I"),
    "parent_uuid": (40, "16s"),
}
LOC = 576  # first parent locator in the header; 24 bytes each


def checksum(b):
    return ~sum(b) & 0xFFFFFFFF


class Img:
    """A malformed copy of a base image, poked in memory, then saved."""

    def __init__(self, base):
        with open(base, "rb") as f:
            self.b = bytearray(f.read())
        # Dynamic images have a footer copy at 0; fixed ones only at the
        # end.
        self.footers = [len(self.b) - SECTOR]
        if self.b[0:8] == b"conectix":
            self.footers.insert(0, 0)
        self.hdr = self.fget("data_offset")

    def fget(self, k):
        off, fmt = F[k]
        return struct.unpack_from(">" + fmt, self.b, self.footers[0] + off)[0]

    def fset(self, **kv):
        for at in self.footers:
            for k, v in kv.items():
                off, fmt = F[k]
                struct.pack_into(">" + fmt, self.b, at + off, v)

    def hget(self, k):
        off, fmt = H[k]
        return struct.unpack_from(">" + fmt, self.b, self.hdr + off)[0]

    def hset(self, **kv):
        for k, v in kv.items():
            off, fmt = H[k]
            struct.pack_into(">" + fmt, self.b, self.hdr + off, v)

    def loc(self, i, code=None, space=None, length=None, offset=None):
        at = self.hdr + LOC + 24 * i
        c, s, n, r, o = struct.unpack_from(">IIIIQ", self.b, at)
        struct.pack_into(">IIIIQ", self.b, at, c if code is None else code,
                         s if space is None else space,
                         n if length is None else length, r,
                         o if offset is None else offset)
        return c, s, n, o

    def bat(self, i, v):
        struct.pack_into(">I", self.b, self.hget("table_offset") + 4 * i, v)

    def fix(self, footer=True, header=True):
        if footer:
            for at in self.footers:
                struct.pack_into(">I", self.b, at + 64, 0)
                struct.pack_into(">I", self.b, at + 64,
                                 checksum(self.b[at:at + SECTOR]))
        if header and self.hdr != 0xFFFFFFFFFFFFFFFF:
            h = self.hdr
            struct.pack_into(">I", self.b, h + 36, 0)
            struct.pack_into(">I", self.b, h + 36,
                             checksum(self.b[h:h + 1024]))
        return self

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.b)


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main():
    out, vstor = sys.argv[1], sys.argv[2]
    dyn = os.path.join(out, "base-dyn.vhd")
    fixed = os.path.join(out, "base-fixed.vhd")
    parent = os.path.join(out, "parent.vhd")
    child = os.path.join(out, "base-child.vhd")
    run("qemu-img", "create", "-q", "-f", "vpc", dyn, "8M")
    run("qemu-io", "-f", "vpc", "-c", "write -P 0x5a 0 64k",
        "-c", "write -P 0xa5 4M 64k", dyn)
    run("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed",
        fixed, "4M")
    run("qemu-img", "create", "-q", "-f", "vpc", parent, "8M")
    run(vstor, "img", "create", "-q", "-f", "vpc", "-b", "parent.vhd",
        "-F", "vpc", child)

    cases = []

    def case(name, regex, img, suffix=".vhd"):
        img.save(os.path.join(out, name + suffix))
        cases.append((name, regex))

    D = lambda: Img(dyn)  # noqa: E731
    X = lambda: Img(fixed)  # noqa: E731
    C = lambda: Img(child)  # noqa: E731

    # The footer.
    i = D()
    i.fset(cookie=b"conectiy")
    case("bad-cookie", "not a VHD image: no footer", i)
    i = X()
    i.fset(cookie=b"CONECTIX")
    case("fixed-bad-cookie", "not a VHD image", i)
    i = D()
    i.b[100] ^= 0x40  # reserved bytes, counted by the checksum
    case("footer-checksum", "footer at offset 0: checksum is", i)
    i = D()
    i.fset(type=5)
    case("disk-type", "disk type 5 is not", i.fix())
    i = D()
    i.fset(data_offset=1 << 40)
    case("data-offset-past-eof", "data offset 0x10000000000 .* past the end",
         i.fix())
    i = D()
    i.fset(data_offset=0xFFFFFFFFFFFFFFFF)
    case("dynamic-no-data-offset", "needs a data offset", i.fix())
    i = D()
    i.fset(app=b"win ", cur_size=1 << 60)
    case("current-size-huge", "current size [0-9]+ is more than the 2040 GiB",
         i.fix())
    i = X()
    i.fset(app=b"win ", cur_size=64 * MB)
    case("fixed-size-past-data", "larger than the [0-9]+ bytes before the "
         "footer", i.fix())
    i = X()
    i.b = i.b[:2 * MB]
    case("fixed-truncated", "not a VHD image", i)
    i = D()
    i.b = i.b[:300]
    case("tiny", "too short for a VHD footer", i)

    # The dynamic header.
    i = D()
    i.b[i.hdr + 800] ^= 1
    case("header-checksum", "dynamic header at offset 0x200: checksum is", i)
    i = D()
    i.hset(cookie=b"cxsparsf")
    case("header-cookie", "no cookie \"cxsparse\"", i.fix())
    i = D()
    i.hset(version=0x00020000)
    case("header-version", "version 0x20000", i.fix())
    for name, bs in (("block-size-0", 0), ("block-size-3-sectors", 1536),
                     ("block-size-huge", 1 << 30), ("block-size-256", 256)):
        i = D()
        i.hset(block_size=bs)
        case(name, "block size %d is not a power of two" % bs, i.fix())
    i = D()
    i.hset(max_entries=1)
    case("max-entries-small", "max table entries 1 cannot cover", i.fix())
    i = D()
    i.hset(max_entries=0xFFFFFFFF)
    case("max-entries-huge", "allocation table at offset 0x600 \\(4294967295 "
         "entries.* past the end", i.fix())
    i = D()
    i.hset(table_offset=len(i.b))
    case("bat-past-eof", "allocation table at offset .* past the end",
         i.fix())
    i = D()
    i.hset(table_offset=0x400)
    case("bat-on-header", "table at offset 0x400 overlaps the footer or the "
         "dynamic header", i.fix())
    i = D()
    i.hset(table_offset=0x601)
    case("bat-unaligned", "not sector-aligned", i.fix())

    # BAT entries.
    i = D()
    i.bat(0, 0x00FFFFFF)
    case("bat-entry-past-eof", "table entry 0 at offset 0x600 points to a "
         "block at offset 0x1fffffe00 that runs past the end", i.fix())
    i = D()
    i.bat(2, 1)
    case("bat-entry-on-header", "table entry 2 .* overlaps", i.fix())
    i = D()
    i.b = i.b[:len(i.b) - 1024 * 1024]  # into the second block
    case("truncated", "table entry [0-9]+ .* runs past the end", i)

    # Differencing images and their parents.
    i = C()
    c, s, n, o = i.loc(0)
    i.loc(0, length=0x7FFFFFFF)
    case("locator-huge-length", "parent locator 0 .*more than a path needs",
         i.fix())
    i = C()
    i.loc(1, offset=1 << 40)
    case("locator-past-eof", "parent locator 1 .*past the end of the file",
         i.fix())
    i = C()
    c, s, n, o = i.loc(0)
    i.b[o:o + 2] = b"\x00\xd8"  # a lone high surrogate, UTF-16LE
    case("locator-bad-utf16", "parent locator 0 .*not valid UTF-16", i.fix())
    i = C()
    i.hset(parent_uuid=b"\x01" * 16)
    case("stale-parent-uuid", "records parent id 01010101-", i.fix())
    i = C()
    for k in range(8):
        i.loc(k, code=0)
    i.b[i.hdr + 64:i.hdr + 576] = bytes(512)
    case("no-locators", "parent not found \\(no usable parent locator", i.fix())
    # Last: the parent goes, for the child that names it.
    C().save(os.path.join(out, "missing-parent.vhd"))
    cases.append(("missing-parent", "parent not found"))

    for name, regex in cases:
        print("%s\t%s" % (name, regex))
    # The missing-parent case names gone00.vhd (same length) instead of
    # parent.vhd, which the other cases need.
    m = Img(os.path.join(out, "missing-parent.vhd"))
    for k in range(3):
        code, s, n, o = m.loc(k)
        data = bytes(m.b[o:o + n])
        if code == 0x4D616358:
            new = data.replace(b"parent.vhd", b"gone00.vhd")
        else:
            new = data.replace("parent.vhd".encode("utf-16-le"),
                               "gone00.vhd".encode("utf-16-le"))
        m.b[o:o + n] = new
    name = "parent.vhd".encode("utf-16-be")
    m.b[m.hdr + 64:m.hdr + 64 + len(name)] = "gone00.vhd".encode("utf-16-be")
    m.fix().save(os.path.join(out, "missing-parent.vhd"))


if __name__ == "__main__":
    main()
