#!/usr/bin/env python3
"""A FUSE "disk" for power-loss tests: it exposes ONE backing image file as /disk.img.

Writes are held in memory and reach the backing file only on fsync/fdatasync, the way a disk's
volatile write cache reaches the platter only on a cache flush; `close()`/flush is not a
durability point. Writing anything to /cut is the power cut: every pending write is dropped and
every later write is acknowledged but discarded, so whatever the kernel still writes back while
the stack is torn down (umount, losetup -d) never lands. A loop device over /disk.img turns the
filesystem's cache flushes and FUA writes into fsync here (see power-loss.ts).

It owns nothing but the image bytes; it must not depend on anything outside the Python standard
library and fusepy (Debian python3-fusepy). Usage: cut_disk.py BACKING_IMAGE MOUNTPOINT.
"""
import errno
import json
import os
import stat
import sys
import time

try:  # Debian's python3-fusepy installs the module as `fusepy`; pip's fusepy as `fuse`.
    from fusepy import FUSE, FuseOSError, Operations
except ImportError:
    from fuse import FUSE, FuseOSError, Operations

PAGE = 4096
IMAGE = '/disk.img'
CUT = '/cut'


def log(event, **fields):
    # One JSON line per event on stderr, like the product's logs, so the test waits on events.
    sys.stderr.write(json.dumps({'event': event, **fields}) + '\n')
    sys.stderr.flush()


class CutDisk(Operations):
    def __init__(self, backing):
        self.fd = os.open(backing, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.pending = {}  # page index -> bytearray(PAGE): written but not yet flushed
        self.cut = False
        self.flushes = 0
        self.dropped_writes = 0
        self.now = time.time()

    def init(self, path):
        log('cut_disk.ready', size=self.size)

    def destroy(self, path):
        log('cut_disk.stopped', flushes=self.flushes, dropped_writes=self.dropped_writes)
        os.close(self.fd)

    def getattr(self, path, fh=None):
        base = {'st_uid': 0, 'st_gid': 0, 'st_atime': self.now, 'st_mtime': self.now,
                'st_ctime': self.now, 'st_nlink': 1}
        if path == '/':
            return {**base, 'st_mode': stat.S_IFDIR | 0o700, 'st_nlink': 2}
        if path == IMAGE:
            return {**base, 'st_mode': stat.S_IFREG | 0o600, 'st_size': self.size}
        if path == CUT:
            return {**base, 'st_mode': stat.S_IFREG | 0o200, 'st_size': 0}
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return ['.', '..', IMAGE[1:], CUT[1:]]

    def open(self, path, flags):
        if path not in (IMAGE, CUT):
            raise FuseOSError(errno.ENOENT)
        return 0

    def truncate(self, path, length, fh=None):
        # The image has a fixed size (a disk does not grow); O_TRUNC on /cut is harmless.
        if path == IMAGE and length != self.size:
            raise FuseOSError(errno.EPERM)

    def _page(self, index):
        page = self.pending.get(index)
        if page is not None:
            return page
        return bytearray(os.pread(self.fd, PAGE, index * PAGE).ljust(PAGE, b'\0'))

    def read(self, path, size, offset, fh):
        if path != IMAGE:
            return b''
        end = min(offset + size, self.size)
        out = bytearray()
        pos = offset
        while pos < end:
            index, skip = divmod(pos, PAGE)
            take = min(PAGE - skip, end - pos)
            out += self._page(index)[skip:skip + take]
            pos += take
        return bytes(out)

    def write(self, path, data, offset, fh):
        if path == CUT:
            if not self.cut:
                log('cut_disk.cut', dropped_pages=len(self.pending))
            self.cut = True
            self.pending.clear()
            return len(data)
        if path != IMAGE:
            raise FuseOSError(errno.EROFS)
        if offset + len(data) > self.size:
            raise FuseOSError(errno.ENOSPC)
        if self.cut:
            # After the cut the power is off: the write is acknowledged and lost.
            self.dropped_writes += 1
            return len(data)
        pos = 0
        while pos < len(data):
            index, skip = divmod(offset + pos, PAGE)
            take = min(PAGE - skip, len(data) - pos)
            page = self._page(index)
            page[skip:skip + take] = data[pos:pos + take]
            self.pending[index] = page
            pos += take
        return len(data)

    def flush(self, path, fh):
        # close() is not a durability point: nothing reaches the backing file here.
        return 0

    def fsync(self, path, datasync, fh):
        if path != IMAGE or self.cut:
            return 0
        for index in sorted(self.pending):
            os.pwrite(self.fd, self.pending[index], index * PAGE)
        self.pending.clear()
        os.fsync(self.fd)
        self.flushes += 1
        return 0

    def release(self, path, fh):
        return 0


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: cut_disk.py BACKING_IMAGE MOUNTPOINT')
    backing, mountpoint = sys.argv[1], sys.argv[2]
    # Single-threaded: the page map needs no lock, and requests are served in arrival order.
    # direct_io keeps the kernel from caching /disk.img pages above us, so every read and write
    # the loop device issues arrives here.
    FUSE(CutDisk(backing), mountpoint, foreground=True, nothreads=True, direct_io=True)


if __name__ == '__main__':
    main()
