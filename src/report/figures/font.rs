//! The font the figures' text is drawn with. plotters lays text out with a TrueType font even for
//! SVG; rather than linking fontconfig, one regular sans-serif font file is found at run time
//! (`ADARAT_FONT`, else the usual places of DejaVu, Liberation, Noto or FreeSans) and registered
//! once for the process (docs/report.md#figures).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Set to a `.ttf` or `.otf` file to choose the figures' font.
pub(super) const FONT_VARIABLE: &str = "ADARAT_FONT";

/// Where Linux distributions (Debian and Ubuntu, Fedora, Arch, openSUSE) and macOS keep a regular
/// sans-serif font.
const KNOWN_FONTS: [&str; 12] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/google-noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum FontError {
    #[error(
        "the figures need a TrueType font and none was found (looked for DejaVu Sans, Liberation \
         Sans, Noto Sans and FreeSans): install one (Debian/Ubuntu: apt install fonts-dejavu-core) \
         or set {FONT_VARIABLE}=/path/to/font.ttf"
    )]
    NotFound,
    #[error("{}: {message} ({FONT_VARIABLE})", path.display())]
    Unusable { path: PathBuf, message: String },
}

/// Registers the font under the family name the figures use; the outcome of the first call is
/// kept, so a process reads and registers a font once.
pub(super) fn register() -> Result<(), FontError> {
    static REGISTERED: OnceLock<Result<(), FontError>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = find()?;
            let bytes = std::fs::read(&path).map_err(|e| FontError::Unusable {
                path: path.clone(),
                message: e.to_string(),
            })?;
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(super::FONT, plotters::style::FontStyle::Normal, bytes)
                .map_err(|_| FontError::Unusable {
                    path,
                    message: "not a TrueType or OpenType font".into(),
                })
        })
        .clone()
}

fn find() -> Result<PathBuf, FontError> {
    if let Some(chosen) = std::env::var_os(FONT_VARIABLE).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(chosen);
        return match path.is_file() {
            true => Ok(path),
            false => Err(FontError::Unusable {
                path,
                message: "no such file".into(),
            }),
        };
    }
    KNOWN_FONTS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .ok_or(FontError::NotFound)
}
