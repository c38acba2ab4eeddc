//! Times parsing a Packages index and resolving a package's dependency
//! closure with kuul's resolver, for `scripts/bench-debian-resolve`.
//!
//! Usage: debian_resolve_bench PACKAGES_FILE ARCHITECTURE RUNS PACKAGE...
//!
//! PACKAGES_FILE is an uncompressed index. Prints the closure as
//! `Inst NAME VERSION` lines, then the stanza count and the median
//! read, parse and resolve times over RUNS runs.

use std::time::{Duration, Instant};

use kuul::sources::debian::{index, resolve};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: debian_resolve_bench PACKAGES_FILE ARCHITECTURE RUNS PACKAGE...");
        std::process::exit(2);
    }
    let (path, architecture) = (&args[1], &args[2]);
    let runs: usize = args[3].parse().expect("RUNS is a number");
    let requests: Vec<String> = args[4..].to_vec();

    let mut read_times = Vec::new();
    let mut parse_times = Vec::new();
    let mut resolve_times = Vec::new();
    let mut closure = Vec::new();
    let mut stanzas = 0;

    for _ in 0..runs {
        let start = Instant::now();
        let text = std::fs::read_to_string(path).expect("read the Packages file");
        read_times.push(start.elapsed());

        let start = Instant::now();
        let (mut packages, mut invalid) = (Vec::new(), Vec::new());
        index::parse_packages(&text, &mut packages, &mut invalid);
        parse_times.push(start.elapsed());
        stanzas = packages.len() + invalid.len();

        let start = Instant::now();
        let universe = resolve::Universe::new(&packages, architecture);
        let chosen = resolve::resolve(&universe, &[], &requests).unwrap_or_else(|error| panic!("{error}")).chosen;
        resolve_times.push(start.elapsed());

        closure = chosen
            .iter()
            .map(|&index| format!("Inst {} {}", universe.package(index).name, universe.package(index).version))
            .collect();
    }

    for line in &closure {
        println!("{line}");
    }
    println!("stanzas {stanzas}");
    println!("read_ms {:.1}", median_ms(&mut read_times));
    println!("parse_ms {:.1}", median_ms(&mut parse_times));
    println!("resolve_ms {:.1}", median_ms(&mut resolve_times));
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}
