//! The supervisor's own process figures for `/metrics`, read from `/proc/self`
//! (the names follow Prometheus' process collector).

use std::fs;

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0)
}

fn clock_ticks() -> f64 {
    sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64
}

fn page_size() -> u64 {
    sysconf(libc::_SC_PAGESIZE).unwrap_or(4096)
}

/// Fields of `/proc/self/stat` after the command name.
fn stat_fields() -> Option<Vec<String>> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// Resident set size in bytes (`/proc/self/statm`, second field, in pages).
pub fn resident_bytes() -> Option<u64> {
    let statm = fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Open file descriptors (entries of `/proc/self/fd`, the one reading it included).
pub fn open_fds() -> Option<u64> {
    Some(fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// User plus system CPU time, in seconds (fields 14 and 15).
pub fn cpu_seconds() -> Option<f64> {
    let f = stat_fields()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// Start time as Unix seconds: boot time (`btime` of `/proc/stat`) plus field 22.
pub fn start_time_seconds() -> Option<f64> {
    let ticks: u64 = stat_fields()?.get(19)?.parse().ok()?;
    let btime: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
    Some(btime as f64 + ticks as f64 / clock_ticks())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_figures_are_plausible() {
        assert!(resident_bytes().unwrap() > 100_000);
        assert!(open_fds().unwrap() >= 3);
        assert!(cpu_seconds().unwrap() >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = start_time_seconds().unwrap();
        assert!(started <= now + 1.0 && started > now - 86_400.0 * 365.0);
    }
}
