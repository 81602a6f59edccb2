//! The C library calls the crate makes on Unix, each behind a safe function: the coarse
//! real-time clock (Linux), killing a child's process group, the effective user and group ids,
//! and the flags of `open(2)`.
//!
//! With the DPAPI calls on Windows (`cache/persist/dpapi.rs`) these are the crate's only
//! `unsafe` blocks: plain system calls on integers or on a local `timespec`, each with its
//! safety comment. `libc` is in every build already (tokio, mio and socket2 depend on it). A safe
//! wrapper crate did this before (rustix); it was the last crate compiled before this one, on
//! the critical path of every dependent's build (about a tenth of a clean release build: see
//! README, "Features, weight and supported Rust").
#![allow(unsafe_code)]

/// `O_NOFOLLOW`: opening a symbolic link fails (`ELOOP`) instead of following it.
pub(crate) const O_NOFOLLOW: i32 = libc::O_NOFOLLOW;
/// `O_NONBLOCK`: opening a FIFO does not wait for a writer.
pub(crate) const O_NONBLOCK: i32 = libc::O_NONBLOCK;

/// Nanoseconds since the Unix epoch from `CLOCK_REALTIME_COARSE`: the time of the last tick
/// (1-4 ms resolution), read from the vDSO without a system call. `None` if the kernel
/// refuses the clock (older than 2.6.32).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
pub(crate) fn realtime_coarse_nanos() -> Option<i64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that outlives the call, which writes only it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    #[allow(clippy::useless_conversion)] // time_t and c_long are i32 on some targets
    let (secs, nanos) = (i64::from(ts.tv_sec), i64::from(ts.tv_nsec));
    (rc == 0).then(|| secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// Sends `SIGKILL` to every process of the process group `group` (a child started as the
/// leader of its own group). Nothing for a group id that is not positive; a failure (`ESRCH`:
/// the group is already gone) is ignored.
pub(crate) fn kill_process_group(group: i32) {
    if group <= 0 {
        return;
    }
    // SAFETY: kill(2) takes integers and touches no memory. `-group` is negative and not -1
    // (group > 0, and -i32::MAX is representable), so it names exactly that process group:
    // never "every process" (-1) nor our own group (0).
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// The effective user id of this process.
#[cfg(any(feature = "persistence", test))]
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective group id of this process.
#[cfg(any(feature = "persistence", test))]
pub(crate) fn effective_gid() -> u32 {
    // SAFETY: getegid(2) takes nothing, touches no memory and cannot fail.
    unsafe { libc::getegid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_coarse_clock_is_the_real_time_within_a_few_ticks() {
        #[allow(clippy::disallowed_methods)] // comparing with the precise system clock
        let precise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let coarse = realtime_coarse_nanos().unwrap();
        // The coarse clock lags by at most a tick (1-4 ms); allow a generous second.
        assert!(
            (precise - coarse).abs() < 1_000_000_000,
            "{precise} vs {coarse}"
        );
    }

    #[test]
    fn a_group_that_is_not_positive_is_never_signalled() {
        // Would kill this process's own group (0) or every process we may signal (-1).
        kill_process_group(0);
        kill_process_group(-1);
        kill_process_group(i32::MIN);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_ids_are_those_of_this_process() {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user and group.
        let proc_self = std::fs::metadata("/proc/self").unwrap();
        assert_eq!(proc_self.uid(), effective_uid());
        assert_eq!(proc_self.gid(), effective_gid());
    }
}
