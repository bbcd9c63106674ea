//! The ratio section: FixRAT's and AdaRAT's β, u, d, τ and clean-only switch
//! (docs/protocol.md#fixrat-and-adarat).
use super::layers::{setting, Layers};
use super::{ConfigError, Study};
use crate::config::job::RatioConfig;
use crate::vocab::Method;

impl Study {
    /// None for st, which has no ratio modes.
    pub(super) fn ratio(
        &self,
        layers: &Layers,
        method: Method,
    ) -> Result<Option<RatioConfig>, ConfigError> {
        if method == Method::St {
            return Ok(None);
        }
        let beta = self.positive(setting!(layers, beta)?)?;
        let up = setting!(layers, up)?;
        let down = setting!(layers, down)?;
        let tau = setting!(layers, tau)?;
        let switch = setting!(layers, switch)?;
        let down = self.non_negative(down)?;
        if up.value.0 <= down {
            return Err(self.error(
                &up.path,
                format!(
                    "expected up (u) greater than down (d = {down}), got {}",
                    up.value.0
                ),
            ));
        }
        let tau = self.non_negative(tau)?;
        if !(switch.value.0 > 0.0 && switch.value.0 <= 1.0) {
            return Err(self.error(
                &switch.path,
                format!("expected a value in (0, 1], got {}", switch.value.0),
            ));
        }
        Ok(Some(RatioConfig {
            beta,
            up: up.value.0,
            down,
            tau,
            switch: switch.value.0,
        }))
    }
}
