//! The command line the benchmark servers share: `--listen ADDR`, `--threads N` and, for the
//! gateway, `--upstream ADDR`.

use std::net::SocketAddr;

/// What a benchmark server was asked for.
pub(crate) struct Args {
    pub(crate) listen: SocketAddr,
    pub(crate) threads: usize,
    pub(crate) upstream: Option<SocketAddr>,
}

/// Parses the arguments, or exits with a message naming `program`.
pub(crate) fn parse(program: &str, default_listen: u16, takes_upstream: bool) -> Args {
    parse_from(std::env::args().skip(1), default_listen, takes_upstream).unwrap_or_else(|message| {
        eprintln!("{program}: {message}");
        std::process::exit(2);
    })
}

fn parse_from(
    mut iter: impl Iterator<Item = String>,
    default_listen: u16,
    takes_upstream: bool,
) -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], default_listen)),
        threads: 1,
        upstream: None,
    };
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value.parse().map_err(|e| format!("--listen: {e}"))?,
            "--upstream" if takes_upstream => {
                args.upstream = Some(value.parse().map_err(|e| format!("--upstream: {e}"))?);
            }
            "--threads" => {
                args.threads = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--threads: expected a positive number")?;
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}
