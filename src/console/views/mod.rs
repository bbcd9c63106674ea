//! Pure views: the frame around the shown screen, drawn from the application state, changing
//! nothing. Every screen has a header line (screens, queue, worker), a body (the screen's own
//! drawing, `screens`) and a status line (the transient message, the search line, or key hints);
//! popups (help, confirmations) go on top.
mod help;

use super::app::{App, Popup};
use super::screens::{Action, Screen};
use super::widgets::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(frame: &mut Frame, app: &App) {
    let theme = Theme {
        ascii: app.settings().ascii,
        colors: app.settings().colors,
    };
    // A long status message (a refused command, a broken settings file) wraps onto more rows.
    let status_text = Paragraph::new(status_line(app, theme)).wrap(Wrap { trim: false });
    let searching = matches!(app.popup(), Some(Popup::Search { .. }));
    let status_height = if app.status().is_some() && !searching {
        (status_text.line_count(frame.area().width) as u16).clamp(1, 4)
    } else {
        1
    };
    let [header, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(status_height),
    ])
    .areas(frame.area());
    frame.render_widget(header_line(app, theme, header.width), header);
    if !app.has_snapshot() {
        let reading = Paragraph::new("reading the output folder...").style(theme.dim());
        frame.render_widget(reading, body);
    } else {
        app.screens()
            .draw(app.screen(), frame, body, app.shared(), theme);
    }
    frame.render_widget(status_text, status);
    match app.popup() {
        Some(Popup::Help { scroll }) => help::draw(frame, frame.area(), app, theme, *scroll),
        Some(Popup::Confirm(command)) => {
            if let Some(question) = command.question(app.shared().snapshot()) {
                draw_question(frame, frame.area(), &question, theme);
            }
        }
        Some(Popup::Search { .. }) | None => {}
    }
}

/// `adarat  [1 Grid] 2 Live 3 Results 4 Compare 5 Study   queue 2 paused  worker 1234  running on cuda:0`;
/// narrow: `adarat  [1 Grid] 2 3 4 5   queue 2 paused  worker 1234`
fn header_line(app: &App, theme: Theme, width: u16) -> Line<'static> {
    let snapshot = app.shared().snapshot();
    // Every screen's title where the line has room (the queue and worker included), else the
    // current screen's only.
    let titles: usize = Screen::ALL.iter().map(|s| s.title().len() + 4).sum();
    let roomy = 7 + titles + 34 <= usize::from(width);
    let mut spans = vec![Span::styled("adarat ", theme.bold())];
    for (number, screen) in Screen::ALL.iter().enumerate() {
        let current = *screen == app.screen();
        let text = if roomy || current {
            format!(" {} {} ", number + 1, screen.title())
        } else {
            format!(" {} ", number + 1)
        };
        let style = if current {
            theme.fg(Color::Cyan).add_modifier(Modifier::REVERSED)
        } else {
            theme.dim()
        };
        spans.push(Span::styled(text, style));
    }
    let mut queue = format!("  queue {}", snapshot.queue.len());
    if snapshot.paused {
        queue.push_str(" paused");
    }
    let paused_style = if snapshot.paused {
        theme.fg(Color::Yellow)
    } else {
        Style::default()
    };
    spans.push(Span::styled(queue, paused_style));
    let worker = match snapshot.worker {
        Some(pid) => format!("  worker {pid}"),
        None => "  no worker".into(),
    };
    spans.push(Span::styled(worker, theme.dim()));
    // Where jobs run, when it fits (the grid's queue panel and detail say it at any width).
    let devices: Vec<&str> = snapshot.live.iter().map(|l| l.device.as_str()).collect();
    let running = format!("  running on {}", devices.join(" "));
    let used: usize = spans.iter().map(|span| span.content.chars().count()).sum();
    if !devices.is_empty() && used + running.chars().count() <= usize::from(width) {
        spans.push(Span::styled(running, theme.fg(Color::Green)));
    }
    Line::from(spans)
}

/// The search line while searching, else the status message, else hints for the main keys.
fn status_line(app: &App, theme: Theme) -> Line<'static> {
    if let Some(Popup::Search { text, .. }) = app.popup() {
        let found = match app.shared().snapshot().first_match(text) {
            Some(job) if !text.is_empty() => format!("   -> {job}"),
            Some(_) => String::new(),
            None => "   (no match)".into(),
        };
        return Line::from(vec![
            Span::styled(format!("/{text}_"), theme.bold()),
            Span::styled(format!("{found}   enter: go  esc: back"), theme.dim()),
        ]);
    }
    if let Some(message) = app.status() {
        return Line::from(Span::styled(message.to_string(), theme.fg(Color::Yellow)));
    }
    let keys = app.shared().keys();
    let hints = [
        (Action::Help, "help"),
        (Action::Search, "find"),
        (Action::Enqueue, "queue"),
        (Action::Stop, "stop"),
        (Action::NextScreen, "screen"),
        (Action::Quit, "quit"),
    ];
    let mut spans = Vec::new();
    for (action, what) in hints {
        let key = keys.keys(action).first().map(ToString::to_string);
        if let Some(key) = key {
            spans.push(Span::styled(key, theme.bold()));
            spans.push(Span::styled(format!(" {what}  "), theme.dim()));
        }
    }
    Line::from(spans)
}

/// A rectangle of at most `width` × `height` in the middle of `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

fn draw_question(frame: &mut Frame, area: Rect, question: &str, theme: Theme) {
    let width = (question.chars().count() as u16 + 4).clamp(20, 70);
    let lines = question.chars().count() as u16 / (width.saturating_sub(4)).max(1) + 1;
    let popup = centered(area, width, lines + 2);
    let text = Paragraph::new(question.to_string())
        .wrap(Wrap { trim: true })
        .style(theme.bold())
        .block(
            theme
                .block(" confirm ")
                .border_style(theme.fg(Color::Yellow)),
        );
    frame.render_widget(Clear, popup);
    frame.render_widget(text, popup);
}
