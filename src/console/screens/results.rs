//! The results screen for the cursor's job: the final attack table, the SA and RA peaks, per-epoch
//! curves with the peaks marked, and a scrollable per-epoch table.
use super::{Action, Shared, View};
use crate::console::snapshot::{over_completed_seeds, JobRow};
use crate::console::widgets::{clock, percent, spread, Curves, Series, Theme};
use crate::store::result::{FinalTable, Peaks, RunResult};
use crate::vocab::Status;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use std::path::Path;

#[derive(Default)]
pub(super) struct Results {
    /// First row shown of the per-epoch table.
    epoch_scroll: usize,
}

impl View for Results {
    fn on_action(&mut self, action: Action, shared: &Shared) {
        match action {
            Action::ScrollUp => self.epoch_scroll = self.epoch_scroll.saturating_sub(5),
            Action::ScrollDown => {
                let epochs = shared.cursor().and_then(|r| r.result.as_ref());
                let last = epochs.map_or(0, |r| r.epochs_log.len().saturating_sub(1));
                self.epoch_scroll = (self.epoch_scroll + 5).min(last);
            }
            _ => {}
        }
    }

    fn run_changed(&mut self) {
        self.epoch_scroll = 0;
    }

    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, theme: Theme) {
        let Some(row) = shared.cursor() else {
            frame.render_widget(Paragraph::new("no jobs in the grid"), area);
            return;
        };
        let Some(result) = row.result.as_deref() else {
            let mut lines = vec![
                Line::from(Span::styled(shared.snapshot().name(row.run()), theme.bold())),
                Line::from(format!(
                    "no result yet ({}): results appear once its run writes result.json",
                    row.state.as_str()
                )),
            ];
            // A job that failed before it had a run folder: the queue kept why.
            if let Some(error) = &row.error {
                lines.push(Line::from(Span::styled(
                    format!("error: {error}"),
                    theme.fg(Color::Red),
                )));
            }
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
            return;
        };
        let peaks = result.peaks.or_else(|| Peaks::of(&result.epochs_log));
        let runs = shared.cursor_runs();
        let header_text = Paragraph::new(header_lines(result, &row.folder, runs.len(), theme))
            .wrap(Wrap { trim: false });
        // A failed run's error is shown whole, taking rows from the epoch table below.
        let header_height = (header_text.line_count(area.width) as u16)
            .min(area.height / 2)
            .max(2);
        let middle_height = (area.height / 2).max(12);
        let [header, middle, epochs] = Layout::vertical([
            Constraint::Length(header_height),
            Constraint::Length(middle_height),
            Constraint::Min(0),
        ])
        .areas(area);
        frame.render_widget(header_text, header);
        // With several seeds the table gains a column: the mean ± sd over the completed ones.
        let group = (runs.len() > 1).then_some(runs.as_slice());
        let table_width = if group.is_some() { 36 } else { 28 };
        let [table, curves] =
            Layout::horizontal([Constraint::Length(table_width), Constraint::Min(0)]).areas(middle);
        let title = match group {
            Some(_) => format!(" final: seed {}, all seeds ", row.seed),
            None => " final ".to_string(),
        };
        let final_text =
            Paragraph::new(final_lines(result, peaks, group, theme)).block(theme.block(title));
        frame.render_widget(final_text, table);
        draw_curves(frame, curves, result, peaks, theme);
        draw_epoch_table(frame, epochs, shared, self.epoch_scroll, result, peaks, theme);
    }
}

fn header_lines(
    result: &RunResult,
    folder: &Path,
    seeds: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let status_style = match result.status {
        Status::Completed => theme.fg(Color::Green),
        Status::Failed => theme.fg(Color::Red),
        Status::Running => theme.fg(Color::Yellow),
        Status::Stopped => theme.fg(Color::Magenta),
    };
    let first = Line::from(vec![
        Span::styled(result.job.to_string(), theme.bold()),
        Span::raw("  "),
        Span::styled(result.status.as_str(), status_style),
        Span::raw(format!(
            "  epochs {}/{}  {} ({:.0} s)  {}  seed {}{}  {}  {}",
            result.epochs_done,
            result.epochs,
            clock(result.seconds),
            result.seconds,
            result.model,
            result.seed,
            if seeds > 1 {
                format!(" of {seeds}")
            } else {
                String::new()
            },
            result.protocol,
            result.device
        )),
    ]);
    let second = match &result.error {
        Some(error) => Line::from(Span::styled(
            format!("error: {error}"),
            theme.fg(Color::Red),
        )),
        None => Line::from(Span::styled(folder.display().to_string(), theme.dim())),
    };
    vec![first, second]
}

fn final_lines(
    result: &RunResult,
    peaks: Option<Peaks>,
    group: Option<&[&JobRow]>,
    theme: Theme,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    match &result.final_table {
        Some(table) => {
            let rows = std::iter::once(("clean", table.clean)).chain(table.attacks());
            lines.extend(rows.map(|(name, value)| {
                let mut text = format!("{name:<7}{:>6}", percent(value));
                if let Some(runs) = group {
                    let pick = |t: &FinalTable| {
                        let all = std::iter::once(("clean", t.clean)).chain(t.attacks());
                        all.into_iter()
                            .find(|(n, _)| *n == name)
                            .and_then(|(_, v)| v)
                    };
                    if let Some(stat) = over_completed_seeds(runs, pick) {
                        text += &format!("  {} n={}", spread(&stat, theme), stat.n);
                    }
                }
                Line::from(text)
            }));
            let preset = table.autoattack_preset.as_deref().unwrap_or("-");
            lines.push(Line::from(Span::styled(
                format!("AA preset {preset}"),
                theme.dim(),
            )));
        }
        None => lines.push(Line::from(Span::styled(
            "no final attacks yet",
            theme.dim(),
        ))),
    }
    if let Some(peaks) = peaks {
        for (name, peak) in [("SA", peaks.test_clean_acc), ("RA", peaks.test_pgd_acc)] {
            lines.push(Line::from(vec![
                Span::styled(format!("{name} peak "), theme.bold()),
                Span::raw(format!("{:.1} @ epoch {}", peak.value, peak.epoch)),
            ]));
        }
    }
    lines
}

fn draw_curves(
    frame: &mut Frame,
    area: Rect,
    result: &RunResult,
    peaks: Option<Peaks>,
    theme: Theme,
) {
    let (sa_glyph, ra_glyph) = if theme.ascii {
        ("*", "o")
    } else {
        ("•", "×")
    };
    let title = Line::from(vec![
        Span::raw(" test "),
        Span::styled(format!("{sa_glyph} SA"), theme.fg(Color::Green)),
        Span::raw(" "),
        Span::styled(format!("{ra_glyph} RA"), theme.fg(Color::Red)),
        Span::raw(" per epoch, ^ peaks "),
    ]);
    let block = theme.block(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [plot, loss] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    let records = &result.epochs_log;
    // Peaks are epochs (1-indexed); the plot wants positions in the log.
    let position = |epoch: usize| records.iter().position(|r| r.epoch == epoch);
    let curves = Curves {
        series: vec![
            Series {
                glyph: sa_glyph,
                style: theme.fg(Color::Green),
                values: records.iter().map(|r| r.test_clean_acc).collect(),
                peak: peaks.and_then(|p| position(p.test_clean_acc.epoch)),
            },
            Series {
                glyph: ra_glyph,
                style: theme.fg(Color::Red),
                values: records.iter().map(|r| r.test_pgd_acc).collect(),
                peak: peaks.and_then(|p| position(p.test_pgd_acc.epoch)),
            },
        ],
        ascii: theme.ascii,
        axis_style: theme.dim(),
    };
    frame.render_widget(curves, plot);
    let [label, spark] =
        Layout::horizontal([Constraint::Length(11), Constraint::Min(0)]).areas(loss);
    frame.render_widget(Paragraph::new("train loss"), label);
    let losses: Vec<Option<f64>> = records.iter().map(|r| Some(r.train_loss)).collect();
    let shown = &losses[losses.len().saturating_sub(spark.width as usize)..];
    frame.render_widget(theme.sparkline(shown, None, Color::White), spark);
}

fn draw_epoch_table(
    frame: &mut Frame,
    area: Rect,
    shared: &Shared,
    scroll: usize,
    result: &RunResult,
    peaks: Option<Peaks>,
    theme: Theme,
) {
    let header = Row::new([
        "epoch", "lr", "loss", "trSA", "trRA", "SA", "FGSM", "RA", "ratio", "clean", "sec", "peak",
    ])
    .style(theme.bold());
    let records = &result.epochs_log;
    let scroll = scroll.min(records.len().saturating_sub(1));
    let rows = records.iter().skip(scroll).map(|r| {
        let sa_peak = peaks.is_some_and(|p| p.test_clean_acc.epoch == r.epoch);
        let ra_peak = peaks.is_some_and(|p| p.test_pgd_acc.epoch == r.epoch);
        let peak = match (sa_peak, ra_peak) {
            (true, true) => "SA RA",
            (true, false) => "SA",
            (false, true) => "RA",
            (false, false) => "",
        };
        let row = Row::new([
            r.epoch.to_string(),
            format!("{:.4}", r.lr),
            format!("{:.3}", r.train_loss),
            format!("{:.1}", r.train_clean_acc),
            format!("{:.1}", r.train_adv_acc),
            format!("{:.1}", r.test_clean_acc),
            format!("{:.1}", r.test_fgsm_acc),
            format!("{:.1}", r.test_pgd_acc),
            r.ratio_mean
                .map_or_else(|| "-".into(), |v| format!("{v:.3}")),
            r.clean_branch_share
                .map_or_else(|| "-".into(), |v| format!("{:.0}%", 100.0 * v)),
            format!("{:.0}", r.seconds),
            peak.to_string(),
        ]);
        if peak.is_empty() {
            row
        } else {
            row.style(theme.fg(Color::Yellow).add_modifier(Modifier::BOLD))
        }
    });
    let widths = [5, 7, 6, 5, 5, 5, 5, 5, 6, 5, 5, 5].map(Constraint::Length);
    let keys = shared.keys();
    let title = format!(
        " epochs from {} of {} ({}/{} scroll) ",
        (scroll + 1).min(records.len()),
        records.len(),
        keys.label(Action::ScrollUp),
        keys.label(Action::ScrollDown)
    );
    let table = Table::new(rows, widths)
        .header(header)
        .block(theme.block_with(Borders::TOP, title));
    frame.render_widget(table, area);
}
