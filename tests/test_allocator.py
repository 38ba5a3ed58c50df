import subprocess
import sys

# In a process of its own: the tuning is for the life of the process.
FAULTS = """
import resource
from ocr_targets.allocator import keep_freed_memory

def faults():
    '''Page faults of an 8 MiB allocation made again after one freed, as image after image.'''
    memory = b"x" * (8 * 2**20)
    del memory
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    memory = b"x" * (8 * 2**20)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

untuned = faults()
keep_freed_memory()
keep_freed_memory()  # once is enough, and twice harmless
faults()
print(untuned, faults())
"""


def test_a_tuned_process_reuses_the_memory_it_freed():
    untuned, tuned = (int(n) for n in subprocess.check_output([sys.executable, "-c", FAULTS]).split())
    assert untuned > 1000  # glibc's default: mapped afresh, a fault per 4 KiB page
    assert tuned < 50
