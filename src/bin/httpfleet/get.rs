//! `httpfleet get`: one request through a backend or a fleet, its body streamed to standard
//! output or a file as it arrives (with a progress bar), its request body from the command line
//! or streamed from a file (`--data @FILE`) or a multipart form (`-F`); every `Config` knob is a
//! flag ([`ConfigArgs`]).

use std::io::Write;
use std::time::Instant;

use httpfleet::multipart::{Form, Part};
use httpfleet::{Body, Client, Config, FleetBuilder, Member};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config_args::ConfigArgs;
use super::{Res, parse_kind, strategy};

#[derive(clap::Args)]
pub(crate) struct GetArgs {
    /// The URL (a path such as `/get` with `--fleet` members that have base URLs).
    url: String,
    #[command(flatten)]
    config: ConfigArgs,
    /// A fleet: comma-separated backends, each optionally `kind=BASE_URL`.
    #[arg(long)]
    fleet: Option<String>,
    /// The fleet strategy: single, failover, round-robin, random, hedged, adaptive.
    #[arg(long, default_value = "failover")]
    strategy: String,
    /// A header, `name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// A request body, or `@FILE` to stream one from a file (makes the request a POST unless
    /// --method says otherwise).
    #[arg(short = 'd', long, conflicts_with = "form")]
    data: Option<String>,
    /// A multipart form field, `name=value`, or `name=@FILE` to send a file streamed from disk,
    /// optionally followed by `;type=MIME` and `;filename=NAME` (repeatable; makes the request
    /// a POST unless --method says otherwise).
    #[arg(short = 'F', long = "form", value_name = "NAME=VALUE")]
    form: Vec<String>,
    /// The method.
    #[arg(short = 'X', long)]
    method: Option<String>,
    /// Write the body to this file instead of standard output, as it arrives. No size limit
    /// applies but `HTTPFLEET_MAX_RESPONSE_BYTES`, if set.
    #[arg(short = 'o', long)]
    output: Option<std::path::PathBuf>,
    /// Show the status line, headers, the member that answered, attempts and timing.
    #[arg(short, long)]
    verbose: bool,
    /// No progress bar (otherwise drawn on a terminal for a download over 1 MiB).
    #[arg(long)]
    no_progress: bool,
    /// Draw the progress bar even when standard error is not a terminal.
    #[arg(long, conflicts_with = "no_progress")]
    progress: bool,
}

/// Bodies below this size get no bar.
const LARGE: u64 = 1 << 20;

pub(crate) fn get(args: GetArgs) -> Res {
    let mut config = args.config.config()?;
    if args.output.is_some()
        && !args.config.sets_max_filesize()
        && std::env::var_os("HTTPFLEET_MAX_RESPONSE_BYTES").is_none()
    {
        config = config.max_response_bytes(u64::MAX);
    }
    let client = client(&args, &config)?;
    let method = args.method.clone().unwrap_or_else(|| {
        if args.data.is_some() || !args.form.is_empty() {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    let mut req = client.request(method.as_str(), &args.url);
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} is not `name: value`"))?;
        req = req.header(k.trim(), v.trim());
    }
    if let Some(d) = &args.data {
        req = match d.strip_prefix('@') {
            Some(path) => req.body(Body::file(path)?),
            None => req.body(d.clone()),
        };
    }
    if !args.form.is_empty() {
        req = req.multipart(form(&args.form)?);
    }
    let bar = progress_bar(&args);
    if let Some(bar) = &bar {
        let bar = bar.clone();
        req = req.on_progress(move |received, total| {
            if total.unwrap_or(received).max(received) >= LARGE {
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(received);
            }
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let result = rt.block_on(async {
        let mut resp = req.send().await?;
        if args.verbose {
            eprintln!("< {:?} {}", resp.version(), resp.status());
            for (k, v) in resp.headers() {
                eprintln!("< {k}: {}", String::from_utf8_lossy(v.as_bytes()));
            }
        }
        let mut out: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut written = 0u64;
        while let Some(piece) = resp.chunk().await? {
            out.write_all(&piece)?;
            written += piece.len() as u64;
        }
        out.flush()?;
        Ok::<_, Box<dyn std::error::Error>>((resp, written))
    });
    let took = start.elapsed();
    if let Some(bar) = &bar {
        bar.finish();
    }
    let (resp, written) = match result {
        Ok(done) => done,
        Err(e) => {
            if args.verbose {
                eprintln!("* failed after {took:?}: {e}");
            }
            return Err(e);
        }
    };
    if args.verbose {
        eprintln!(
            "* served by {} (backend {}), {} attempt(s), {written} bytes in {took:?}, final URL {}",
            resp.member().unwrap_or("-"),
            resp.backend(),
            resp.attempts(),
            resp.url()
        );
        for s in client.stats() {
            let latency = s.latency.map_or(String::new(), |l| {
                format!(", latency p50 {:?} p99 {:?}", l.p50, l.p99)
            });
            eprintln!(
                "* member {}: {} requests, {} failures, {} retries, {} hedges, breaker {:?}{latency}",
                s.name, s.requests, s.failures, s.retries, s.hedges, s.breaker
            );
        }
    }
    args.config.save_cookies(&client, &resp.url().to_string())?;
    if let Some(path) = &args.output {
        eprintln!("wrote {written} bytes to {}", path.display());
    }
    Ok(())
}

/// The multipart form of `-F` fields, in curl's spelling: `name=value`, `name=@FILE`, each
/// with optional `;type=MIME` and `;filename=NAME`.
fn form(fields: &[String]) -> Result<Form, Box<dyn std::error::Error>> {
    let mut form = Form::new();
    for field in fields {
        let (name, spec) = field
            .split_once('=')
            .ok_or_else(|| format!("-F {field:?} is not NAME=VALUE or NAME=@FILE"))?;
        let mut pieces = spec.split(';');
        let value = pieces.next().unwrap_or("");
        let mut part = match value.strip_prefix('@') {
            Some(path) => Part::file(path).map_err(|e| format!("-F {name}: {path}: {e}"))?,
            None => Part::text(value),
        };
        for modifier in pieces {
            match modifier.split_once('=') {
                Some(("type", mime)) => part = part.mime(mime),
                Some(("filename", file_name)) => part = part.file_name(file_name),
                _ => return Err(format!("-F {field:?}: unknown {modifier:?}").into()),
            }
        }
        form = form.part(name, part);
    }
    Ok(form)
}

fn client(args: &GetArgs, config: &Config) -> Result<Client, Box<dyn std::error::Error>> {
    let Some(list) = &args.fleet else {
        return Ok(Client::from_config(config)?);
    };
    let mut b = FleetBuilder::new(config).strategy(strategy(&args.strategy)?);
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let (kind, base) = match item.split_once('=') {
            Some((k, u)) => (parse_kind(k)?, Some(u)),
            None => (parse_kind(item)?, None),
        };
        let mut m = Member::new(kind);
        if let Some(u) = base {
            m = m.base_url(u);
        }
        b = b.member(m);
    }
    Ok(b.build()?)
}

/// The download's progress bar, on standard error: drawn on a terminal when the body goes to a
/// file or standard output is a terminal, or always with `--progress`; shown once the body is
/// known to be over 1 MiB.
fn progress_bar(args: &GetArgs) -> Option<ProgressBar> {
    if args.no_progress {
        return None;
    }
    let to_file_or_terminal =
        args.output.is_some() || std::io::IsTerminal::is_terminal(&std::io::stdout());
    if !to_file_or_terminal && !args.progress {
        return None;
    }
    let target = if args.progress {
        ProgressDrawTarget::term_like_with_hz(Box::new(Lines), 10)
    } else {
        ProgressDrawTarget::stderr_with_hz(10)
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template(
            "{percent:>3}% [{bar:30}] {bytes} / {total_bytes}  {binary_bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>."),
    );
    Some(bar)
}

/// Standard error as a progress bar's target when it is not a terminal (`--progress`): each
/// redraw a line of its own, no cursor movement.
#[derive(Debug)]
pub(crate) struct Lines;

impl indicatif::TermLike for Lines {
    fn width(&self) -> u16 {
        80
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr(), "{s}")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        write!(std::io::stderr(), "{s}")
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
