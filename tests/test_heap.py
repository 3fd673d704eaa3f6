"""qa_pipeline.heap: inside held() a thread that allocates, writes and frees the same 300 MB buffer
again and again faults it in once, not every time; leaving held() hands the memory back."""

import subprocess
import sys
import textwrap

# Both programs below: like CTranslate2's worker thread, the same big buffer allocated, written and
# freed `rounds` times (plain malloc: numpy would ask for huge pages and fault far less).
CHURN = textwrap.dedent("""
    import ctypes, resource, threading

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    SIZE = 300 * 2**20

    def churn(rounds):
        for _ in range(rounds):
            buffer = libc.malloc(SIZE)
            ctypes.memset(buffer, 1, SIZE)
            libc.free(buffer)
""")

PROGRAM = CHURN + textwrap.dedent("""
    import sys
    from qa_pipeline.heap import arena_count, held, share_one_arena

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) // 1024

    def work():
        churn(8)

    def faults_of(run):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        run()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    def in_thread():
        worker = threading.Thread(target=work)
        worker.start(); worker.join()

    def in_held_thread():
        with held():
            in_thread()
            rss_inside.append(rss_mb())

    if sys.argv[1] == "early":
        policy = share_one_arena()
    thread = threading.Thread(target=lambda: bytearray(10**6))  # a thread that may take an arena of its own
    thread.start(); thread.join()
    if sys.argv[1] == "late":
        policy = share_one_arena()
    rss_inside = []
    mapped, held_faults = faults_of(in_thread), faults_of(in_held_thread)
    print(policy.one_arena, policy.arenas, arena_count(), mapped, held_faults, rss_inside[0], rss_mb())
""")

ONE_BUFFER = 300 * 2**20 // 4096  # pages


def run(when: str):
    out = subprocess.run([sys.executable, "-c", PROGRAM, when], capture_output=True, text=True, check=True).stdout
    one_arena, arenas, arenas_after, mapped, held, rss_inside, rss_after = out.split()
    return one_arena == "True", int(arenas), int(arenas_after), int(mapped), int(held), int(rss_inside), int(rss_after)


def test_inside_held_a_reused_buffer_is_faulted_in_once_and_handed_back_after():
    one_arena, arenas, arenas_after, mapped, held, rss_inside, rss_after = run("early")
    assert (one_arena, arenas, arenas_after) == (True, 1, 1)  # every thread on the main arena
    assert mapped > 7 * ONE_BUFFER  # between stages: each round maps, faults and unmaps the buffer
    assert held < 2 * ONE_BUFFER  # inside held(): faulted in about once for 8 rounds
    assert rss_inside >= 300 and rss_after < rss_inside - 250  # kept while held, handed back after


def test_set_late_threads_keep_their_arenas():
    # a thread already owns an arena: it keeps it (its heaps map a 300 MB block alone anyway)
    one_arena, arenas, arenas_after, mapped, held, _inside, _after = run("late")
    assert (one_arena, arenas) == (False, 2)
    assert mapped > 7 * ONE_BUFFER


EASED = CHURN + textwrap.dedent("""
    from qa_pipeline import heap

    def rss_mb():
        return heap.resident_bytes() // 2**20

    def in_thread(rounds):
        worker = threading.Thread(target=churn, args=(rounds,))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        worker.start(); worker.join()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    heap.share_one_arena()
    with heap.held():
        in_thread(1)
        kept = rss_mb()
        heap.ease()  # under the cap: kept
        under_cap = rss_mb()
        heap.HELD_RSS_CAP = 0
        heap.ease()  # over it: handed back
        eased = rss_mb()
        held_faults = in_thread(4)  # eased, still held: faulted in once
    print(kept, under_cap, eased, held_faults)
""")


def test_ease_hands_back_over_the_cap_and_the_heap_stays_held():
    out = subprocess.run([sys.executable, "-c", EASED], capture_output=True, text=True, check=True).stdout
    kept, under_cap, eased, held_faults = map(int, out.split())
    assert kept >= 300 and under_cap >= 300  # the freed buffer stays while the process is under the cap
    assert eased < kept - 250  # over the cap: handed back
    assert held_faults < 2 * ONE_BUFFER  # after easing, the held heap's policy still: faulted in about once for 4 rounds
