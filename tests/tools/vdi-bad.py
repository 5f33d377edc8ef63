#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile VDI images for tests/integration/vdi-bad.t.

    vdi-bad.py DIR

Makes a base image with qemu-img and qemu-io in DIR (4 MiB, blocks 0
and 2 written with 0x11 and 0x22, so the block map is [0, free, 1,
free]), then one malformed copy per case (fields poked little-endian, as
VirtualBox lays them out), and prints one line per case, tab-separated:

    NAME  INFO  INFO_RE  READ  READ_RE  WRITE

INFO is "fail" (`vstor img info -f vdi` exits 1, stderr matches INFO_RE)
or "warn" (exits 0, stderr warns with INFO_RE).  READ is "fail OFF LEN
PAT" or "ok OFF LEN PAT" for `vbd-io -f vdi --readonly FILE read OFF LEN
PAT`; a failing read's stderr matches READ_RE.  WRITE is "fail" when an
open for writing must be refused too (always here: the header or the map
is damaged).
"""
import os
import struct
import subprocess
import sys

MB = 1 << 20
SIZE = 4 * MB

# Header fields: (offset, struct format), little-endian.
F = {
    "signature": (0x40, "I"), "version": (0x44, "I"),
    "header_size": (0x48, "I"), "image_type": (0x4c, "I"),
    "offset_bmap": (0x154, "I"), "offset_data": (0x158, "I"),
    "sector_size": (0x168, "I"), "disk_size": (0x170, "Q"),
    "block_size": (0x178, "I"), "block_extra": (0x17c, "I"),
    "blocks_in_image": (0x180, "I"), "blocks_allocated": (0x184, "I"),
    "uuid_link": (0x1a8, "16s"), "uuid_parent": (0x1b8, "16s"),
}


class Img:
    """A malformed copy of the base image, poked in memory, then saved."""

    def __init__(self, base):
        with open(base, "rb") as f:
            self.b = bytearray(f.read())

    def set(self, **fields):
        for k, v in fields.items():
            off, fmt = F[k]
            struct.pack_into("<" + fmt, self.b, off, v)
        return self

    def entry(self, i, v):
        bmap = struct.unpack_from("<I", self.b, F["offset_bmap"][0])[0]
        struct.pack_into("<I", self.b, bmap + 4 * i, v)
        return self

    def truncate(self, n):
        del self.b[n:]
        return self

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.b)


def main():
    d = sys.argv[1]
    base = os.path.join(d, "base.vdi")
    subprocess.run(["qemu-img", "create", "-q", "-f", "vdi", base,
                    str(SIZE)], check=True)
    subprocess.run(["qemu-io", "-f", "vdi", "-c", "write -P 0x11 0 1M",
                    "-c", "write -P 0x22 2M 1M", base], check=True,
                   stdout=subprocess.DEVNULL)
    with open(base, "rb") as f:
        b = f.read()
    data = struct.unpack_from("<I", b, F["offset_data"][0])[0]
    hdr = "fail 0 1M 0x11"
    cases = [
        # name, image, info, info_re, read, read_re
        ("signature", Img(base).set(signature=0x12345678), "fail",
         "signature at offset 0x40 is 0x12345678", hdr, ""),
        ("version-1.0", Img(base).set(version=0x00010000), "fail",
         "version at offset 0x44 is 1.0", hdr, ""),
        ("version-2.1", Img(base).set(version=0x00020001), "fail",
         "version at offset 0x44 is 2.1", hdr, ""),
        ("header-size-small", Img(base).set(header_size=0x100), "fail",
         "header size at offset 0x48 is 256", hdr, ""),
        ("header-size-large", Img(base).set(header_size=0x1000), "fail",
         "block map offset at offset 0x154 is 0x200.*end of the header",
         hdr, ""),
        ("type-differencing", Img(base).set(image_type=4), "fail",
         "image type at offset 0x4c is 4 \\(differencing\\)", hdr, ""),
        ("type-unknown", Img(base).set(image_type=9), "fail",
         "image type at offset 0x4c is 9", hdr, ""),
        ("sector-size-4k", Img(base).set(sector_size=4096), "fail",
         "sector size at offset 0x168 is 4096", hdr, ""),
        ("block-size-0", Img(base).set(block_size=0), "fail",
         "block size at offset 0x178 is 0, not a power of two", hdr, ""),
        ("block-size-odd", Img(base).set(block_size=MB + 512), "fail",
         "block size at offset 0x178 is 1049088", hdr, ""),
        ("block-size-huge", Img(base).set(block_size=1 << 30), "fail",
         "block size at offset 0x178 is 1073741824", hdr, ""),
        ("block-extra", Img(base).set(block_extra=512), "fail",
         "block extra data size at offset 0x17c is 512", hdr, ""),
        ("bmap-past-eof", Img(base).set(offset_bmap=0x10000000), "fail",
         "block map \\(offset 0x10000000, 4 entries\\).*past the end of "
         "the file", hdr, ""),
        ("bmap-unaligned", Img(base).set(offset_bmap=0x204), "fail",
         "block map offset at offset 0x154 is 0x204", hdr, ""),
        ("data-before-map", Img(base).set(offset_data=0x200), "fail",
         "data offset at offset 0x158 is 0x200.*end of the block map",
         hdr, ""),
        ("data-unaligned", Img(base).set(offset_data=data + 8), "fail",
         "data offset at offset 0x158 is 0x%x" % (data + 8), hdr, ""),
        ("disk-size-too-large", Img(base).set(disk_size=SIZE + 512),
         "fail", "disk size at offset 0x170 is %d bytes, more than the 4 "
         "blocks" % (SIZE + 512), hdr, ""),
        ("blocks-huge", Img(base).set(blocks_in_image=0x40000000), "fail",
         "blocks in image at offset 0x180 is 1073741824", hdr, ""),
        ("blocks-map-past-eof", Img(base).set(blocks_in_image=1000000),
         "fail", "block map \\(offset 0x200, 1000000 entries\\).*past the "
                 "end of the file", hdr, ""),
        ("allocated-too-many", Img(base).set(blocks_allocated=5), "fail",
         "blocks allocated at offset 0x184 is 5, more than the 4", hdr, ""),
        ("link-uuid", Img(base).set(uuid_link=b"\x01" * 16), "fail",
         "link UUID at offset 0x1a8 is set", hdr, ""),
        ("parent-uuid", Img(base).set(uuid_parent=b"\x02" * 16), "fail",
         "parent UUID at offset 0x1b8 is set", hdr, ""),
        ("truncated-header", Img(base).truncate(0x100), "fail",
         "too short for a VDI header", hdr, ""),
        ("empty-file", Img(base).truncate(0), "fail",
         "is 0 bytes long, too short", hdr, ""),
        ("truncated-map", Img(base).truncate(0x208), "fail",
         "block map \\(offset 0x200, 4 entries\\) ends at 0x210, past the "
         "end of the file", hdr, ""),
        # Damage in the map: the header is fine, the reads through the
        # bad entry fail, other blocks read.
        ("entry-out-of-range", Img(base).entry(0, 1000), "warn",
         "block map entry 0 at offset 0x200 is 1000: not below",
         "fail 0 1M 0x11",
         "block map entry 0 at offset 0x200 is 1000: not below"),
        ("entry-past-eof", Img(base).entry(2, 3), "warn",
         "block map entry 2 at offset 0x208 is 3: a data block past the "
         "end of the file", "fail 2M 1M 0x22",
         "block map entry 2 at offset 0x208 is 3: a data block past"),
        ("truncated-data", Img(base).truncate(data + MB + 4096), "warn",
         "block map entry 2 at offset 0x208 is 1: a data block past the "
         "end of the file", "fail 2M 4k 0x22",
         "block map entry 2 at offset 0x208 is 1: a data block past"),
        ("entry-shared", Img(base).entry(1, 0), "warn",
         "block map entry 1 at offset 0x204 is 0: a data block also used "
         "by another entry", "ok 1M 1M 0x11", ""),
        ("entry-ok-read", Img(base).entry(3, 1000), "warn",
         "block map entry 3 at offset 0x20c is 1000", "ok 2M 1M 0x22", ""),
    ]
    for name, img, info, info_re, read, read_re in cases:
        img.save(os.path.join(d, name + ".vdi"))
        print("\t".join([name, info, info_re, read, read_re or "-",
                         "fail"]))


if __name__ == "__main__":
    main()
