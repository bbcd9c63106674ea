//! The live screen: the running job's progress, per-batch sparklines (loss, ratio, train SA and
//! RA), per-epoch test SA and RA, AdaRAT's clean-only share, and the recent log lines.
use super::{Shared, View};
use crate::console::snapshot::{self, Phase};
use crate::console::widgets::{clock, Theme};
use crate::store::events::BatchSample;
use crate::store::result::EpochRecord;
use crate::vocab::Mode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Borders, Paragraph, Wrap};
use ratatui::Frame;

const LABEL_WIDTH: u16 = 18;

#[derive(Default)]
pub(super) struct Live;

impl View for Live {
    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, theme: Theme) {
        let Some(live) = shown_live(shared) else {
            let queued = shared.snapshot().queue.len();
            let lines = vec![
                Line::from(Span::styled("nothing running", theme.bold())),
                Line::from(Span::styled(
                    format!(
                        "{queued} queued; enter on a job in the grid queues it and starts the queue"
                    ),
                    theme.dim(),
                )),
            ];
            frame.render_widget(Paragraph::new(lines), area);
            return;
        };
        // Taller terminals get taller sparklines; the log takes what is left.
        let spark_height = match area.height {
            0..=23 => 1,
            24..=31 => 2,
            32..=43 => 3,
            _ => 4,
        };
        let share_height = u16::from(live.run.job.mode == Mode::AdaRat);
        let [info, batches, epochs, share, log] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Length(4 * spark_height),
            Constraint::Length(2),
            Constraint::Length(share_height),
            Constraint::Min(0),
        ])
        .areas(area);
        frame.render_widget(
            Paragraph::new(info_lines(shared, live, theme, info.width)),
            info,
        );
        draw_batches(frame, batches, live, theme, spark_height);
        draw_epochs(frame, epochs, live, theme);
        if share_height > 0 {
            frame.render_widget(Paragraph::new(clean_only_line(live, theme)), share);
        }
        // Long lines (an error, a sanity warning) wrap; the newest line stays at the bottom.
        let shown = log.height.saturating_sub(1) as usize;
        let recent = live.log.iter().skip(live.log.len().saturating_sub(shown));
        let log_lines: Vec<Line> = recent.map(|l| Line::from(l.clone())).collect();
        let log_text = Paragraph::new(log_lines)
            .wrap(Wrap { trim: false })
            .block(theme.block_with(Borders::TOP, " log "));
        let overflow = (log_text.line_count(log.width) as u16).saturating_sub(log.height);
        frame.render_widget(log_text.scroll((overflow, 0)), log);
    }
}

/// The cursor's run if it runs, else another seed of the cursor's job, else the first running run.
fn shown_live(shared: &Shared) -> Option<&snapshot::Live> {
    let live = &shared.snapshot().live;
    let cursor = shared.cursor().map(|row| row.run());
    (live.iter().find(|l| Some(l.run) == cursor))
        .or_else(|| live.iter().find(|l| Some(l.run.job) == shared.cursor))
        .or_else(|| live.first())
}

fn info_lines(shared: &Shared, live: &snapshot::Live, theme: Theme, width: u16) -> Vec<Line<'static>> {
    let phase = match live.phase {
        Phase::Starting => "starting: loading data, building the model".to_string(),
        Phase::Training => "training".into(),
        Phase::Testing => format!("testing epoch {}", live.epoch),
        Phase::FinalEvaluation => match &live.final_step {
            Some(step) => format!("final attacks: {}", step.attack),
            None => "final attacks".into(),
        },
    };
    let running = shared.snapshot().running().len();
    let others = if running > 1 {
        format!("  ({running} running: the cursor picks)")
    } else {
        String::new()
    };
    let bar_width = (width as usize / 3).clamp(6, 40);
    let rate = live
        .images_per_second
        .map_or_else(|| "- img/s".into(), |r| format!("{r:.0} img/s"));
    let eta = live.eta_seconds.map_or_else(|| "-".into(), clock);
    vec![
        Line::from(vec![
            Span::styled(shared.snapshot().name(live.run), theme.bold()),
            Span::raw(format!("  pid {}  {}  ", live.pid, live.device)),
            Span::styled(phase, theme.fg(Color::Yellow)),
            Span::styled(others, theme.dim()),
        ]),
        Line::from(vec![
            Span::raw(format!("epoch {:>3}/{:<3} ", live.epoch, live.epochs)),
            Span::styled(
                theme.progress_bar(live.epochs_log.len(), live.epochs, bar_width),
                theme.fg(Color::Green),
            ),
            Span::raw(format!("  lr {:.4}  {rate}  ETA {eta}", live.lr)),
        ]),
        batch_line(live, theme, bar_width),
    ]
}

/// The training batch within the epoch, or in the final evaluation the test batch.
fn batch_line(live: &snapshot::Live, theme: Theme, bar_width: usize) -> Line<'static> {
    let (label, batch, batches) = match (&live.phase, &live.final_step) {
        (Phase::FinalEvaluation, Some(step)) => ("final", step.batch, step.batches),
        _ => ("batch", live.batch, live.batches_per_epoch),
    };
    Line::from(vec![
        Span::raw(format!("{label} {batch:>3}/{batches:<3} ")),
        Span::styled(
            theme.progress_bar(batch, batches, bar_width),
            theme.fg(Color::Cyan),
        ),
    ])
}

/// A label on the left, a sparkline of the latest values that fit on the right.
fn spark_row(
    frame: &mut Frame,
    area: Rect,
    label: Vec<Line<'static>>,
    values: &[Option<f64>],
    max: Option<f64>,
    color: Color,
    theme: Theme,
) {
    let [label_area, spark_area] =
        Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(label), label_area);
    let shown = &values[values.len().saturating_sub(spark_area.width as usize)..];
    frame.render_widget(theme.sparkline(shown, max, color), spark_area);
}

fn draw_batches(frame: &mut Frame, area: Rect, live: &snapshot::Live, theme: Theme, height: u16) {
    let rows = Layout::vertical([Constraint::Length(height); 4]).split(area);
    let samples = &live.samples;
    let last = samples.last();
    let series = |value: fn(&BatchSample) -> f64| -> Vec<Option<f64>> {
        samples.iter().map(|s| Some(value(s))).collect()
    };
    let loss_label = last.map_or_else(|| "-".into(), |s| format!("{:.3}", s.loss));
    spark_row(
        frame,
        rows[0],
        vec![Line::from(format!("loss     {loss_label}"))],
        &series(|s| s.loss),
        None,
        Color::White,
        theme,
    );
    draw_ratio(frame, rows[1], live, theme);
    let accuracy = |value: fn(&BatchSample) -> f64| {
        last.map_or_else(|| "-".into(), |s| format!("{:.1}", value(s)))
    };
    spark_row(
        frame,
        rows[2],
        vec![Line::from(format!(
            "train SA {}",
            accuracy(|s| s.clean_acc)
        ))],
        &series(|s| s.clean_acc),
        Some(100.0),
        Color::Green,
        theme,
    );
    spark_row(
        frame,
        rows[3],
        vec![Line::from(format!("train RA {}", accuracy(|s| s.adv_acc)))],
        &series(|s| s.adv_acc),
        Some(100.0),
        Color::Red,
        theme,
    );
}

/// The ratio (docs/protocol.md#the-plotted-ratio): none in baseline, 1 in FixRAT, H' or clean-only in AdaRAT.
fn draw_ratio(frame: &mut Frame, area: Rect, live: &snapshot::Live, theme: Theme) {
    match live.run.job.mode {
        Mode::Baseline => {
            let text = Line::from(vec![
                Span::raw(format!("{:<width$}", "ratio", width = LABEL_WIDTH as usize)),
                Span::styled("no ratio in baseline", theme.dim()),
            ]);
            frame.render_widget(Paragraph::new(text), area);
        }
        Mode::FixRat => {
            let values: Vec<Option<f64>> =
                live.samples.iter().map(|s| s.ratio.or(Some(1.0))).collect();
            let label = vec![Line::from("ratio    1 (FixRAT)")];
            spark_row(frame, area, label, &values, None, Color::Yellow, theme);
        }
        Mode::AdaRat => {
            let values: Vec<Option<f64>> = live
                .samples
                .iter()
                .map(|s| match s.clean_only {
                    Some(true) => None,
                    _ => Some(s.ratio.unwrap_or(0.0)),
                })
                .collect();
            let now = match live.samples.last() {
                Some(s) if s.clean_only == Some(true) => "clean-only".to_string(),
                Some(s) => s.ratio.map_or_else(|| "-".into(), |r| format!("{r:.3}")),
                None => "-".into(),
            };
            let legend = Line::from(vec![
                Span::styled(theme.clean_only_symbol(), theme.clean_only_style()),
                Span::raw(" = clean-only"),
            ]);
            let label = vec![Line::from(format!("ratio H' {now}")), legend];
            spark_row(frame, area, label, &values, None, Color::Yellow, theme);
        }
    }
}

type EpochValue = fn(&EpochRecord) -> f64;

/// Per-epoch test SA and RA, one column per epoch.
fn draw_epochs(frame: &mut Frame, area: Rect, live: &snapshot::Live, theme: Theme) {
    let rows = Layout::vertical([Constraint::Length(1); 2]).split(area);
    let records = &live.epochs_log;
    let last = records.last();
    let curves: [(&str, EpochValue, Color); 2] = [
        ("test SA", |r| r.test_clean_acc, Color::Green),
        ("test RA", |r| r.test_pgd_acc, Color::Red),
    ];
    for (row, (name, value, color)) in rows.iter().zip(curves) {
        let label = last.map_or_else(
            || format!("{name}  -"),
            |r| format!("{name}  {:.1} e{}", value(r), r.epoch),
        );
        let values: Vec<Option<f64>> = records.iter().map(|r| Some(value(r))).collect();
        spark_row(
            frame,
            *row,
            vec![Line::from(label)],
            &values,
            Some(100.0),
            color,
            theme,
        );
    }
}

/// AdaRAT: the share of clean-only batches in the current epoch so far, and per finished epoch.
fn clean_only_line(live: &snapshot::Live, theme: Theme) -> Line<'static> {
    let current: Vec<&BatchSample> = live
        .samples
        .iter()
        .filter(|s| s.epoch == live.epoch)
        .collect();
    let clean = current
        .iter()
        .filter(|s| s.clean_only == Some(true))
        .count();
    let now = if current.is_empty() {
        format!("clean-only batches: epoch {} -", live.epoch)
    } else {
        format!(
            "clean-only batches: epoch {} {:.0}% ({clean}/{})",
            live.epoch,
            100.0 * clean as f64 / current.len() as f64,
            current.len()
        )
    };
    let finished: Vec<String> = live
        .epochs_log
        .iter()
        .rev()
        .take(8)
        .rev()
        .filter_map(|r| {
            Some(format!(
                "e{} {:.0}%",
                r.epoch,
                100.0 * r.clean_branch_share?
            ))
        })
        .collect();
    let mut spans = vec![Span::styled(now, theme.clean_only_style())];
    if !finished.is_empty() {
        spans.push(Span::styled(
            format!("  before: {}", finished.join(" ")),
            theme.dim(),
        ));
    }
    Line::from(spans)
}
