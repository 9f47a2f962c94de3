//! A global allocator that counts, per thread, the bytes live and their peak, so a fuzz target can
//! check the memory one input took (the parsers run on the calling thread). Counting is two
//! thread-local additions per allocation: the rest of the test binary does not notice it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

thread_local! {
    // `const` and without destructors: usable from inside the allocator, even while a thread ends.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// Bytes live past which this thread's allocations fail (0: no limit).
    static LIMIT: Cell<isize> = const { Cell::new(0) };
}

/// Whether growing this thread's live bytes by `size` stays within its limit. Past it the
/// allocation fails and the process aborts naming the size ("memory allocation of N bytes
/// failed"): an input that would take the machine's memory stops the run instead of the machine.
fn allowed(size: usize) -> bool {
    let limit = LIMIT.try_with(Cell::get).unwrap_or(0);
    limit == 0 || LIVE.try_with(Cell::get).unwrap_or(0).saturating_add(size as isize) <= limit
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// A new block of `size` bytes from `alloc`, counted, or null when the case's limit refuses it.
fn counted(size: usize, alloc: impl FnOnce() -> *mut u8) -> *mut u8 {
    if !allowed(size) {
        return std::ptr::null_mut();
    }
    let p = alloc();
    if !p.is_null() {
        track(size as isize);
    }
    p
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        counted(layout.size(), || unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        counted(layout.size(), || unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && !allowed(new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Starts measuring the current thread's peak, and fails its allocations past `limit` more bytes;
/// returns the bytes live now.
pub(super) fn start_peak(limit: usize) -> isize {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    LIMIT.with(|l| l.set(live.saturating_add(limit as isize)));
    live
}

/// Bytes allocated at the peak since [`start_peak`] returned `base`, beyond `base`.
pub(super) fn peak_since(base: isize) -> usize {
    (PEAK.with(Cell::get) - base).max(0) as usize
}
