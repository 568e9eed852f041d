//! The `cutout` executable: the CLI, which opens the desktop window when no
//! subcommand is given.

fn main() -> std::process::ExitCode {
    keep_large_buffers_out_of_the_heap();
    cutout::cli::main()
}

/// Buffers of this size and larger are given their own mapping, returned to
/// the system as soon as they are freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 4 << 20;

/// Pictures and results (a 12 MP cut-out is about 14 MB) come and go by
/// the hundred in a batch. glibc raises its mmap threshold to the size of
/// each mapped buffer freed, so after the first result every later one is
/// carved out of its per-thread heaps, which keep the memory: a batch's
/// peak grew with its length. A fixed threshold keeps the peak flat (the
/// memory bench: 1,000 and 100 photos of 12 MP both peak at ~165 MB).
fn keep_large_buffers_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before
    // any other thread exists, and an unknown option or value is refused
    // with a return of 0, which leaves the defaults in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}
