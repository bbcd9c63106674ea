//! The help popup: every action with its keys (overrides included) and its settings name.
use super::centered;
use crate::console::app::App;
use crate::console::screens::Action;
use crate::console::widgets::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme, scroll: usize) {
    let keys = app.shared().keys();
    let key_width = Action::all()
        .map(|a| keys.label(a).chars().count())
        .max()
        .unwrap_or(0);
    let mut lines = vec![Line::from(Span::styled(
        format!("{:<key_width$}  {:<16} {}", "keys", "name", "what it does"),
        theme.dim(),
    ))];
    lines.extend(Action::all().map(|action| {
        let entry = action.entry();
        Line::from(vec![
            Span::styled(
                format!("{:<key_width$}  ", keys.label(action)),
                theme.bold(),
            ),
            Span::styled(format!("{:<16} ", entry.name), theme.dim()),
            Span::raw(entry.description),
        ])
    }));
    lines.push(Line::from(Span::styled(
        "override in settings.yaml: keys: {name: key}",
        theme.dim(),
    )));
    let popup = centered(area, 84, lines.len() as u16 + 2);
    // Scroll no further than the last line being at the bottom.
    let visible = popup.height.saturating_sub(2) as usize;
    let scroll = scroll.min(lines.len().saturating_sub(visible));
    let help = Paragraph::new(lines)
        .scroll((scroll as u16, 0))
        .block(theme.block(format!(
            " keys: {} closes, {} scroll ",
            keys.label(Action::Close),
            keys.label(Action::Down)
        )));
    frame.render_widget(Clear, popup);
    frame.render_widget(help, popup);
}
