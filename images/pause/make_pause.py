#!/usr/bin/env python3
"""Write LAYER_DIR/pause (run by the image build, see image.yaml): a static x86-64 ELF that waits in pause(2) forever (no libc).

Layout: the 64-byte ELF header, one 56-byte PT_LOAD program header mapping the whole
file read+execute at 0x400000, then the code at offset 120 (the entry point):

    loop: mov eax, 34   ; b8 22 00 00 00   __NR_pause
          syscall       ; 0f 05
          jmp loop      ; eb f7

As PID 1 of a container it has no signal handlers, so only SIGKILL stops it: good
enough for the lab, whose nodes cannot run containers (see docs/iso.md).
"""

import struct
import sys
from pathlib import Path

BASE = 0x400000
CODE = bytes.fromhex("b822000000 0f05 ebf7")  # mov eax, 34; syscall; jmp -9
EHDR_SIZE, PHDR_SIZE = 64, 56


def elf() -> bytes:
    entry = BASE + EHDR_SIZE + PHDR_SIZE
    size = EHDR_SIZE + PHDR_SIZE + len(CODE)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little endian, SysV
    ehdr = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, entry, EHDR_SIZE, 0, 0, EHDR_SIZE, PHDR_SIZE, 1, 0, 0, 0
    )
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, size, size, 0x1000)
    return ehdr + phdr + CODE


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: make_pause.py LAYER_DIR   (writes LAYER_DIR/pause)", file=sys.stderr)
        return 2
    dest = Path(sys.argv[1]) / "pause"
    dest.write_bytes(elf())
    dest.chmod(0o755)
    return 0


if __name__ == "__main__":
    sys.exit(main())
