"""qa_pipeline.heap: one arena with mmap off keeps big freed buffers for the next allocation, so a
thread allocating the same 300 MB buffer again and again does not fault it in again each time."""

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent("""
    import ctypes, resource, sys, threading
    from qa_pipeline.heap import arena_count, hold_heap

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    SIZE = 300 * 2**20

    def work():  # like CTranslate2's worker thread: the same big buffer, allocated, written, freed
        for _ in range(8):  # (plain malloc: numpy would ask for huge pages and fault far less)
            buffer = libc.malloc(SIZE)
            ctypes.memset(buffer, 1, SIZE)
            libc.free(buffer)

    if sys.argv[1] == "early":
        policy = hold_heap()
    thread = threading.Thread(target=lambda: bytearray(10**6))  # a thread that takes an arena of its own
    thread.start(); thread.join()
    if sys.argv[1] == "late":
        policy = hold_heap()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    worker = threading.Thread(target=work)
    worker.start(); worker.join()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(policy.mode, policy.arenas, arena_count(), faults)
""")


def run(when: str) -> tuple[str, int, int, int]:
    out = subprocess.run([sys.executable, "-c", PROGRAM, when], capture_output=True, text=True, check=True).stdout
    mode, arenas, arenas_after, faults = out.split()
    return mode, int(arenas), int(arenas_after), int(faults)


def test_held_heap_faults_a_reused_buffer_in_once():
    mode, arenas, arenas_after, faults = run("early")
    assert (mode, arenas, arenas_after) == ("held", 1, 1)  # every thread on the main arena
    one_buffer = 300 * 2**20 // 4096
    assert faults < 2 * one_buffer  # 8 rounds, faulted in about once


def test_late_setting_keeps_big_blocks_mapped_and_unmapped():
    # a thread already owns an arena: holding freed memory there could let it pile up, so the
    # older policy stays, and each round faults the buffer in again
    mode, arenas, _after, faults = run("late")
    assert (mode, arenas) == ("mapped", 2)
    assert faults > 6 * 300 * 2**20 // 4096
