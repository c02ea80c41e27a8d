//! Heap bytes the server holds per member and per room, counted by a global allocator
//! that tallies every allocation and free.
//!
//! Run with `cargo bench -p ocm-bench --bench memory`. Prints one line per layout.

use ocm_bench::Fixture;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts live heap bytes, then defers to the system allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` unchanged and only adds bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes held by a fixture of `rooms` × `per_room`, minus the fixture's own
/// bookkeeping (its copy of every token and name).
fn server_bytes(rooms: usize, per_room: usize) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    let fixture = Fixture::with_rooms(rooms, per_room);
    let with_fixture = LIVE.load(Ordering::Relaxed) - before;
    let (server, members) = (fixture.server, fixture.members);
    let before_members = LIVE.load(Ordering::Relaxed);
    drop(members);
    let bookkeeping = before_members - LIVE.load(Ordering::Relaxed);
    let held = with_fixture - bookkeeping;
    drop(server);
    held
}

fn main() {
    // cargo bench passes "--bench"; a plain `cargo test` of benches passes nothing we need
    println!("layout (rooms x members) | server heap | per member | per room");
    for (rooms, per_room) in [(1, 10_000), (100, 100), (5_000, 2), (10_000, 1)] {
        let bytes = server_bytes(rooms, per_room);
        let members = (rooms * per_room) as isize;
        println!(
            "{rooms:>6} x {per_room:<6} | {:>9} KiB | {:>6} B | {:>6} B",
            bytes / 1024,
            bytes / members,
            bytes / rooms as isize,
        );
    }
}
