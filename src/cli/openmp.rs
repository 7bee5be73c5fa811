//! llama.cpp's OpenMP threads are told not to spin for long at a barrier, before anything
//! else runs: on a machine busy with something else, spinning makes generation several times
//! slower than its share of the cores explains (`pith bench load` measures it).

/// How long an OpenMP thread spins at a barrier before it sleeps (libgomp's
/// `GOMP_SPINCOUNT`). With libgomp's default, [`LIBGOMP_DEFAULT`], each of llama.cpp's
/// threads spins away the core its partner needs whenever another program runs too; at this
/// value an idle machine generates as fast as with the default.
pub const SPIN_COUNT: &str = "1000";

/// libgomp's own spin count, for the comparison in `pith bench load`.
pub const LIBGOMP_DEFAULT: &str = "300000";

/// libgomp reads its settings when it is loaded, before `main` runs: so set ours and start
/// again (the same process, through `exec`), unless the user chose their own
/// (`GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`). If that fails, pith runs on with the defaults.
pub fn calm() {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let chosen = ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY"]
            .iter()
            .any(|name| std::env::var_os(name).is_some());
        if chosen {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        // Returns only when the program could not be started again.
        let _ = command.args(args).env("GOMP_SPINCOUNT", SPIN_COUNT).exec();
    }
}
