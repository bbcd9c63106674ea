//! The methods' own parameters, `methods.<m>.params`: typed into the [`MethodParams`] variant of
//! the job's method and checked.
use super::{ConfigError, MethodEntry, Study};
use crate::config::job::{FatParams, GeneralistParams, MethodParams};
use crate::vocab::Method;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

impl Study {
    pub(super) fn params(
        &self,
        method: Method,
        entry: &MethodEntry,
    ) -> Result<MethodParams, ConfigError> {
        let path = format!("methods.{method}.params");
        let refuse = |message: String| self.error(&path, message);
        let value = entry
            .params
            .clone()
            .unwrap_or(Value::Mapping(Default::default()));
        let params = match method {
            Method::St => MethodParams::St,
            Method::PgdAt => MethodParams::PgdAt,
            Method::Fat => {
                let p: FatParams = typed(value).map_err(refuse)?;
                if p.taus.len() != p.boundaries.len() + 1
                    || p.boundaries.windows(2).any(|w| w[0] >= w[1])
                {
                    return Err(refuse(
                        "expected one more τ than boundaries, and increasing boundaries".into(),
                    ));
                }
                MethodParams::Fat(p)
            }
            Method::Dat => MethodParams::Dat(typed(value).map_err(refuse)?),
            Method::Trades => MethodParams::Trades(typed(value).map_err(refuse)?),
            Method::KdAt => MethodParams::KdAt(typed(value).map_err(refuse)?),
            Method::Iad => MethodParams::Iad(typed(value).map_err(refuse)?),
            Method::Generalist => {
                let p: GeneralistParams = typed(value).map_err(refuse)?;
                if p.communication_period == 0 || !(0.0..1.0).contains(&p.ema_max_decay) {
                    return Err(refuse(
                        "expected communication_period ≥ 1 and ema_max_decay in [0, 1)".into(),
                    ));
                }
                MethodParams::Generalist(p)
            }
        };
        Ok(params)
    }
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_yaml::from_value(value).map_err(|e| e.to_string())
}
