//! The one layer lookup: a key's value in the most specific layer that sets it, with the dotted
//! path it was written at, so that a value refused later is reported at its line (or as the
//! `--set` that gave it). The checks every section shares refuse a value at that path.
use super::{ConfigError, MethodEntry, Settings, Study};
use crate::config::number::Num;
use crate::vocab::JobName;

/// A value and the dotted path it came from.
pub(super) struct Located<T> {
    pub value: T,
    pub path: String,
}

impl<T> Located<T> {
    pub(super) fn at(layer: &str, key: &str, value: T) -> Located<T> {
        Located {
            value,
            path: format!("{layer}.{key}"),
        }
    }
}

/// `key`'s value in the last of `layers` (least specific first, each a dotted path and its value
/// if it sets one) that sets it.
pub(super) fn most_specific<'a, T, L>(key: &str, layers: L) -> Option<Located<T>>
where
    L: IntoIterator<Item = (&'a str, Option<T>)>,
    L::IntoIter: DoubleEndedIterator,
{
    layers
        .into_iter()
        .rev()
        .find_map(|(layer, value)| value.map(|value| Located::at(layer, key, value)))
}

/// A job's settings layers, least specific first: `training`, `datasets.<d>`,
/// `methods.<m>.settings`, `methods.<m>.datasets.<d>`. The command line goes on top in
/// [`Study::resolve`].
pub(super) struct Layers<'a> {
    study: &'a Study,
    job: &'a JobName,
    /// None: a method without an entry for the dataset.
    layers: [(String, Option<&'a Settings>); 4],
}

impl<'a> Layers<'a> {
    pub(super) fn of_job(
        study: &'a Study,
        job: &'a JobName,
        method_entry: &'a MethodEntry,
    ) -> Result<Layers<'a>, ConfigError> {
        let f = &study.file;
        let dataset_settings = f.datasets.get(&job.dataset).ok_or_else(|| {
            study.error(
                "datasets",
                format!("dataset `{}` has no entry", job.dataset),
            )
        })?;
        let (method, dataset) = (job.method, job.dataset);
        Ok(Layers {
            study,
            job,
            layers: [
                ("training".into(), Some(&f.training)),
                (format!("datasets.{dataset}"), Some(dataset_settings)),
                (
                    format!("methods.{method}.settings"),
                    Some(&method_entry.settings),
                ),
                (
                    format!("methods.{method}.datasets.{dataset}"),
                    method_entry.datasets.get(&dataset),
                ),
            ],
        })
    }

    /// `key`'s most specific value, if any layer sets it.
    pub(super) fn find<T>(
        &self,
        key: &str,
        read: impl Fn(&Settings) -> Option<T>,
    ) -> Option<Located<T>> {
        most_specific(
            key,
            self.layers
                .iter()
                .map(|(layer, settings)| (layer.as_str(), settings.and_then(&read))),
        )
    }

    /// `key`'s most specific value, which the job needs.
    pub(super) fn get<T>(
        &self,
        key: &str,
        read: impl Fn(&Settings) -> Option<T>,
    ) -> Result<Located<T>, ConfigError> {
        self.find(key, read).ok_or_else(|| {
            self.study.error(
                &format!("datasets.{}", self.job.dataset),
                format!("no value for `{key}` (job {})", self.job),
            )
        })
    }
}

/// `setting!(layers, epochs)`: the most specific `epochs`, named once.
macro_rules! setting {
    ($layers:expr, $key:ident) => {
        $layers.get(stringify!($key), |s| s.$key.clone())
    };
}
pub(super) use setting;

/// The checks shared by the sections, each refusing the value at its path.
impl Study {
    pub(super) fn positive(&self, number: Located<Num>) -> Result<f64, ConfigError> {
        let value = number.value.0;
        if value > 0.0 {
            Ok(value)
        } else {
            Err(self.error(
                &number.path,
                format!("expected a value greater than 0, got {value}"),
            ))
        }
    }

    pub(super) fn non_negative(&self, number: Located<Num>) -> Result<f64, ConfigError> {
        let value = number.value.0;
        if value >= 0.0 {
            Ok(value)
        } else {
            Err(self.error(&number.path, format!("expected a value ≥ 0, got {value}")))
        }
    }

    /// In [0, 1): a dropout, a momentum.
    pub(super) fn below_one(&self, number: Located<Num>) -> Result<f64, ConfigError> {
        let value = number.value.0;
        if (0.0..1.0).contains(&value) {
            Ok(value)
        } else {
            Err(self.error(
                &number.path,
                format!("expected a value in [0, 1), got {value}"),
            ))
        }
    }

    pub(super) fn at_least_one(&self, count: Located<usize>) -> Result<usize, ConfigError> {
        if count.value > 0 {
            Ok(count.value)
        } else {
            Err(self.error(&count.path, "expected a value of at least 1, got 0"))
        }
    }
}
