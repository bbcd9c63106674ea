//! The home screen: the grid of jobs (rows method × mode, columns datasets) with each job's state
//! and headline numbers, the cursor's job in detail, and the queue.
use super::{Action, Shared, View};
use crate::console::snapshot::{completed_seeds, over_completed_seeds, JobRow, JobState};
use crate::console::widgets::{percent, spread, Theme};
use crate::store::result::FinalTable;
use crate::vocab::{DatasetKind, FinalAttack, JobName, Status};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Borders, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

/// Wide enough for the side pane with the detail and the queue.
const SIDE_PANE_FROM_WIDTH: u16 = 110;
const SIDE_PANE_WIDTH: u16 = 42;
const LABEL_WIDTH: u16 = 19;
/// The grid's title and header and three jobs, whatever the detail below it needs.
const GRID_MIN_HEIGHT: u16 = 5;

#[derive(Default)]
pub(super) struct Grid;

impl View for Grid {
    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, theme: Theme) {
        if area.width >= SIDE_PANE_FROM_WIDTH {
            let [grid, side] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(SIDE_PANE_WIDTH)])
                    .areas(area);
            draw_grid(frame, grid, shared, theme);
            let detail_text = Paragraph::new(detail_lines(shared, theme, false))
                .wrap(Wrap { trim: false })
                .block(theme.block(" job "));
            // A long error takes the rows it needs, the queue what is left.
            let needed = detail_text.line_count(side.width.saturating_sub(2)) as u16;
            let detail_height = needed.clamp(10, side.height.saturating_sub(3).max(10));
            let [detail, queue] =
                Layout::vertical([Constraint::Length(detail_height), Constraint::Min(0)]).areas(side);
            frame.render_widget(detail_text, detail);
            let queue_text = Paragraph::new(queue_lines(shared, theme))
                .wrap(Wrap { trim: false })
                .block(theme.block(" queue "));
            frame.render_widget(queue_text, queue);
        } else {
            let detail_text = Paragraph::new(detail_lines(shared, theme, true))
                .wrap(Wrap { trim: false })
                .block(theme.block_with(Borders::TOP, ""));
            // The cursor's job gets the rows it needs (a failed job's whole error), the grid at least
            // its title, header and a few jobs.
            let needed = detail_text.line_count(area.width) as u16;
            let room = area.height.saturating_sub(1 + GRID_MIN_HEIGHT);
            let detail_height = needed.clamp(4, room.max(4));
            let [grid, detail, queue] = Layout::vertical([
                Constraint::Min(3),
                Constraint::Length(detail_height),
                Constraint::Length(1),
            ])
            .areas(area);
            draw_grid(frame, grid, shared, theme);
            frame.render_widget(detail_text, detail);
            let one_line = queue_lines(shared, theme)
                .into_iter()
                .flat_map(|line| {
                    let mut spans = line.spans;
                    spans.push(Span::raw("  "));
                    spans
                })
                .collect::<Vec<_>>();
            frame.render_widget(Paragraph::new(Line::from(one_line)), queue);
        }
    }
}

fn draw_grid(frame: &mut Frame, area: Rect, shared: &Shared, theme: Theme) {
    let shape = shared.snapshot().grid_shape();
    let columns = shape.datasets.len().max(1) as u16;
    let cell_width = area.width.saturating_sub(LABEL_WIDTH) / columns;
    let cell_width = cell_width.saturating_sub(1) as usize;
    let header = Row::new(
        std::iter::once(Cell::from("")).chain(
            shape
                .datasets
                .iter()
                .map(|d| Cell::from(dataset_label(*d, cell_width))),
        ),
    )
    .style(theme.bold());
    let cursor = shared.cursor().map(|row| row.job);
    let mut cursor_cell = None;
    let rows = shape
        .rows
        .iter()
        .enumerate()
        .map(|(row_index, &(method, mode))| {
            let label = Cell::from(format!("{:<10} {mode}", method.as_str())).style(theme.bold());
            let cells = shape.datasets.iter().enumerate().map(|(column, &dataset)| {
                let job = JobName {
                    method,
                    dataset,
                    mode,
                };
                if Some(job) == cursor {
                    cursor_cell = Some((row_index, column + 1));
                }
                match shared.snapshot().runs_of(job).as_slice() {
                    [] => Cell::from(""),
                    [row] => job_cell(shared, row, cell_width, theme),
                    runs => seeds_cell(shared, runs, cell_width, theme),
                }
            });
            Row::new(std::iter::once(label).chain(cells.collect::<Vec<_>>()))
        });
    let rows: Vec<Row> = rows.collect();
    let widths = std::iter::once(Constraint::Length(LABEL_WIDTH))
        .chain(shape.datasets.iter().map(|_| Constraint::Fill(1)));
    let legend = format!(
        "{}: PGD20 AA   {}/{}: test SA RA ",
        Status::Completed,
        Status::Running,
        Status::Stopped
    );
    let title = Line::from(vec![
        Span::styled(" Grid ", theme.bold()),
        Span::styled(legend, theme.dim()),
    ]);
    let table = Table::new(rows, widths)
        .header(header)
        .cell_highlight_style(Modifier::REVERSED)
        .block(theme.block_with(Borders::TOP, title));
    let mut state = TableState::default().with_selected_cell(cursor_cell);
    frame.render_stateful_widget(table, area, &mut state);
}

/// The dataset's name, shortened when the column is narrow.
fn dataset_label(dataset: DatasetKind, width: usize) -> &'static str {
    let name = dataset.as_str();
    if name.len() <= width {
        return name;
    }
    match dataset {
        DatasetKind::FashionMnist => "fmnist",
        DatasetKind::Synthetic => "synth",
        DatasetKind::Cifar100 => "c100",
        DatasetKind::Cifar10 => "c10",
        DatasetKind::Mnist => "mnist",
    }
}

/// The headline numbers of a job: final PGD-20 and AA when completed, last test SA and RA while
/// running or stopped.
fn headline(shared: &Shared, row: &JobRow) -> Option<String> {
    match row.state {
        JobState::Run(Status::Completed) => {
            let table = row.result.as_ref()?.final_table.as_ref()?;
            Some(format!(
                "{} {}",
                percent(table.accuracy(FinalAttack::Pgd20)),
                percent(table.accuracy(FinalAttack::AutoAttack))
            ))
        }
        JobState::Run(Status::Running | Status::Stopped) => {
            let last = shared.snapshot().last_epoch(row)?;
            Some(format!(
                "{:.1} {:.1}",
                last.test_clean_acc, last.test_pgd_acc
            ))
        }
        JobState::NotRun | JobState::Queued | JobState::Run(Status::Failed) => None,
    }
}

fn job_cell(shared: &Shared, row: &JobRow, width: usize, theme: Theme) -> Cell<'static> {
    let mark = if shared.is_selected(row.job) {
        theme.selected_mark()
    } else {
        " "
    };
    let room = width.saturating_sub(1);
    let word = row.state.as_str();
    let remote = row.remote.as_ref().filter(|task| task.active);
    let text = match (row.state, headline(shared, row)) {
        // Waiting or running on the cluster, where this machine sees no process (docs/slurm.md).
        (state, _) if remote.is_some() && state != JobState::Run(Status::Running) => {
            let (backend, state) = remote.map_or(("", String::new()), |task| {
                (task.backend, task.state.to_lowercase())
            });
            let text = format!("{backend} {state}");
            if room >= text.len() {
                text
            } else {
                state
            }
        }
        (JobState::Queued, _) => {
            let place = shared
                .snapshot()
                .queue_position(row.run())
                .map_or(0, |p| p + 1);
            if room >= 9 {
                format!("queued #{place}")
            } else {
                format!("q#{place}")
            }
        }
        (_, Some(numbers)) if room > word.len() + numbers.len() => format!("{word} {numbers}"),
        (_, Some(numbers)) => format!("{}{numbers}", theme.state_glyph(row.state)),
        (_, None) if room >= word.len() => word.to_string(),
        (state, None) => theme.state_glyph(state).to_string(),
    };
    let mark_style = theme.fg(Color::Cyan).add_modifier(Modifier::BOLD);
    Cell::from(Line::from(vec![
        Span::styled(mark, mark_style),
        Span::styled(text, theme.state_style(row.state)),
    ]))
}

/// Where a job's runs stand together: running if one runs, else queued if one waits, else failed
/// or stopped if one is, else completed when one is (the count says how many), else not run.
fn cell_state(runs: &[&JobRow]) -> JobState {
    let any = |state: JobState| runs.iter().any(|row| row.state == state);
    let order = [
        JobState::Run(Status::Running),
        JobState::Queued,
        JobState::Run(Status::Failed),
        JobState::Run(Status::Stopped),
        JobState::Run(Status::Completed),
    ];
    order
        .into_iter()
        .find(|state| any(*state))
        .unwrap_or(JobState::NotRun)
}

/// A job with several seeds: how many are done (`2/3`) and the mean PGD-20 and AA over them, or
/// the state of the job's runs while none is done.
fn seeds_cell(shared: &Shared, runs: &[&JobRow], width: usize, theme: Theme) -> Cell<'static> {
    let mark = if shared.is_selected(runs[0].job) {
        theme.selected_mark()
    } else {
        " "
    };
    let room = width.saturating_sub(1);
    let state = cell_state(runs);
    let done = completed_seeds(runs);
    let counts = format!("{done}/{}", runs.len());
    let pgd = over_completed_seeds(runs, |t| t.accuracy(FinalAttack::Pgd20))
        .map(|s| format!("{:.1}", s.mean));
    let aa = over_completed_seeds(runs, |t| t.accuracy(FinalAttack::AutoAttack))
        .map_or("-".into(), |s| format!("{:.1}", s.mean));
    let word = state.as_str();
    let glyph = theme.state_glyph(state);
    // The longest that fits: a narrow grid keeps the count and what it can of the numbers.
    let candidates = match (state, pgd) {
        (JobState::Run(Status::Running) | JobState::Queued, _) => {
            vec![format!("{word} {counts}"), format!("{glyph}{counts}")]
        }
        (_, Some(pgd)) => vec![format!("{counts} {pgd} {aa}"), format!("{counts} {pgd}")],
        (JobState::NotRun, None) => vec![word.to_string()],
        (_, None) => vec![format!("{word} {counts}"), format!("{glyph}{counts}")],
    };
    let text = (candidates.into_iter())
        .find(|text| text.chars().count() <= room)
        .unwrap_or(counts);
    let mark_style = theme.fg(Color::Cyan).add_modifier(Modifier::BOLD);
    Cell::from(Line::from(vec![
        Span::styled(mark, mark_style),
        Span::styled(text, theme.state_style(state)),
    ]))
}

/// The cursor's run: name, state, epochs, process, folder and its headline or error; with several
/// seeds, the job's mean ± sd over the completed ones. Compact puts the name and the facts on one
/// line; the side pane gives the name a line of its own.
fn detail_lines(shared: &Shared, theme: Theme, compact: bool) -> Vec<Line<'static>> {
    let Some(row) = shared.cursor() else {
        return vec![Line::from("no jobs in the grid")];
    };
    let live = shared.snapshot().live(row.run());
    let (done, total) = match (live, &row.result) {
        (Some(live), _) => (live.epochs_log.len(), live.epochs),
        (None, Some(result)) => (result.epochs_done, result.epochs),
        (None, None) => (0, 0),
    };
    let name = Span::styled(shared.snapshot().name(row.run()), theme.bold());
    let mut lines = Vec::new();
    let mut first = Vec::new();
    if compact {
        first.extend([name, Span::raw("  ")]);
    } else {
        lines.push(Line::from(name));
    }
    first.push(Span::styled(
        row.state.as_str(),
        theme.state_style(row.state),
    ));
    if total > 0 {
        first.push(Span::raw(format!("  epochs {done}/{total}")));
    }
    if let Some(pid) = (row.owner.as_ref().map(|o| o.pid)).or(live.map(|l| l.pid)) {
        first.push(Span::raw(format!("  pid {pid}")));
    }
    if let Some(live) = live {
        first.push(Span::raw(format!(" on {}", live.device)));
    }
    if let Some(task) = &row.remote {
        let mut text = format!("  {} {} {}", task.backend, task.id, task.state);
        if let Some(reason) = &task.reason {
            text += &format!(" ({reason})");
        }
        if task
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("Dependency"))
        {
            text += &format!(" after {}", task.after.join(", "));
        }
        if let Some(node) = &task.node {
            text += &format!(" on {node}, {}", task.elapsed);
        }
        first.push(Span::styled(text, theme.fg(Color::Magenta)));
    }
    if let Some(place) = shared.snapshot().queue_position(row.run()) {
        let count = shared.snapshot().queue.len();
        first.push(Span::raw(format!(
            "  #{} of {count} in the queue",
            place + 1
        )));
    }
    if shared.is_selected(row.job) {
        first.push(Span::styled("  selected", theme.fg(Color::Cyan)));
    }
    lines.push(Line::from(first));
    if let Some(error) = &row.error {
        lines.push(Line::from(Span::styled(
            format!("error: {error}"),
            theme.fg(Color::Red),
        )));
    }
    let final_table = row.result.as_ref().and_then(|r| r.final_table.as_ref());
    if let Some(table) = final_table {
        let attacks: Vec<String> = std::iter::once(("clean", table.clean))
            .chain(table.attacks())
            .map(|(name, value)| format!("{name} {}", percent(value)))
            .collect();
        // The side pane is narrow: three to a line there.
        let per_line = if compact { attacks.len() } else { 3 };
        lines.extend(attacks.chunks(per_line).map(|c| Line::from(c.join("  "))));
    } else if let Some(last) = shared.snapshot().last_epoch(row) {
        lines.push(Line::from(format!(
            "epoch {}: test SA {:.1}  RA {:.1}",
            last.epoch, last.test_clean_acc, last.test_pgd_acc
        )));
    }
    let runs = shared.cursor_runs();
    if runs.len() > 1 {
        lines.push(seeds_line(shared, &runs, theme));
    }
    lines.push(Line::from(Span::styled(
        row.folder.display().to_string(),
        theme.dim(),
    )));
    lines
}

/// `seeds 2/3 done: PGD-20 45.1±0.3  AA 40.2±0.5  ([ ] other seeds)`.
fn seeds_line(shared: &Shared, runs: &[&JobRow], theme: Theme) -> Line<'static> {
    let done = completed_seeds(runs);
    let mut text = format!("seeds {done}/{} done", runs.len());
    type Pick = fn(&FinalTable) -> Option<f64>;
    let columns: [(&str, Pick); 3] = [
        ("SA", |t| t.clean),
        ("PGD-20", |t| t.accuracy(FinalAttack::Pgd20)),
        ("AA", |t| t.accuracy(FinalAttack::AutoAttack)),
    ];
    let stats: Vec<String> = (columns.iter())
        .filter_map(|(name, pick)| {
            Some(format!(
                "{name} {}",
                spread(&over_completed_seeds(runs, *pick)?, theme)
            ))
        })
        .collect();
    if !stats.is_empty() {
        text += &format!(": {}", stats.join("  "));
    }
    let keys = format!(
        "  ({} {} other seeds)",
        shared.keys().label(Action::PreviousSeed),
        shared.keys().label(Action::NextSeed)
    );
    Line::from(vec![Span::raw(text), Span::styled(keys, theme.dim())])
}

/// `queue (paused):` then one line per queued job, then the worker.
fn queue_lines(shared: &Shared, theme: Theme) -> Vec<Line<'static>> {
    let snapshot = shared.snapshot();
    let state = match (snapshot.queue.is_empty(), snapshot.paused) {
        (true, false) => "queue empty".to_string(),
        (true, true) => "queue empty, paused".to_string(),
        (false, paused) => {
            let count = snapshot.queue.len();
            if paused {
                let start = shared.keys().label(Action::StartQueue);
                format!("queue {count}, paused ({start} starts it):")
            } else {
                format!("queue {count}:")
            }
        }
    };
    let mut lines = vec![Line::from(Span::styled(state, theme.bold()))];
    for (place, queued) in snapshot.queue.iter().enumerate() {
        let style = if shared.cursor().map(|r| r.job) == Some(queued.run.job) {
            theme.fg(Color::Cyan).add_modifier(Modifier::REVERSED)
        } else {
            theme.fg(Color::Cyan)
        };
        lines.push(Line::from(Span::styled(
            format!("{}. {}", place + 1, snapshot.name(queued.run)),
            style,
        )));
        if let Some(waiting) = &queued.waiting {
            lines.push(Line::from(Span::styled(
                format!("   {waiting}"),
                theme.dim(),
            )));
        }
    }
    if !snapshot.live.is_empty() {
        lines.push(Line::from(Span::styled("running:", theme.bold())));
    }
    for live in &snapshot.live {
        let line = format!("{}  {}", snapshot.name(live.run), live.device);
        lines.push(Line::from(Span::styled(line, theme.fg(Color::Green))));
    }
    let worker = match snapshot.worker {
        Some(pid) => format!("worker pid {pid}"),
        None => "no worker".into(),
    };
    lines.push(Line::from(Span::styled(worker, theme.dim())));
    lines
}
