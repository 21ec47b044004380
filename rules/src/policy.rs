//! A role's compiled policy: an action for every category and theme, time bands, and the
//! switches the proxy reads (SafeSearch, HTTPS decryption).

use crate::category::{CategoryId, CategorySet};
use crate::config::{Action, ActionSpec};
use crate::search::ThemeId;

/// A role's index in one compiled policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct RoleId(pub u8);

/// A time of the week when some categories get another action.
#[derive(Clone, Debug)]
pub struct TimeBand {
    pub name: String,
    pub categories: CategorySet,
    pub spec: ActionSpec,
    /// Bit 0 is Monday.
    pub days: u8,
    /// Minutes after local midnight; `from > to` spans midnight.
    pub from: u16,
    pub to: u16,
}

impl TimeBand {
    /// True at `weekday` (0 = Monday) and `minute` of the local day.
    pub fn active(&self, weekday: u8, minute: u16) -> bool {
        let in_time = if self.from <= self.to {
            self.from <= minute && minute < self.to
        } else {
            minute >= self.from || minute < self.to
        };
        // A band that spans midnight belongs to the day it starts on.
        let day = if self.from > self.to && minute < self.to {
            (weekday + 6) % 7
        } else {
            weekday
        };
        in_time && self.days & (1 << day) != 0
    }
}

/// Parses `mon-fri`, `sat,sun`, `mon,wed-fri`, `weekdays`, `weekends`, `all`.
pub fn parse_days(text: &str) -> Result<u8, String> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let day = |s: &str| -> Result<u8, String> {
        let s = s.trim().to_ascii_lowercase();
        NAMES
            .iter()
            .position(|n| s.starts_with(n) && n.len() <= s.len())
            .map(|i| i as u8)
            .ok_or_else(|| format!("{s:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"))
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "all" | "every day" | "daily" => return Ok(0x7f),
        "weekdays" => return Ok(0x1f),
        "weekends" => return Ok(0x60),
        _ => {}
    }
    let mut mask = 0u8;
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if a > b {
                    return Err(format!("{part:?} runs backwards"));
                }
                for d in a..=b {
                    mask |= 1 << d;
                }
            }
            None => mask |= 1 << day(part)?,
        }
    }
    Ok(mask)
}

/// Parses `HH:MM` (`24:00` allowed) into minutes after midnight.
pub fn parse_time(text: &str) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time of day (HH:MM, 00:00 to 24:00)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// One role, compiled.
#[derive(Clone, Debug)]
pub struct RolePolicy {
    pub name: String,
    pub description: String,
    pub default: ActionSpec,
    pub safesearch: bool,
    pub decrypt_https: bool,
    /// Indexed by category id; categories the role does not name get `default`.
    pub categories: Vec<ActionSpec>,
    /// Indexed by theme id; themes the role does not name are logged as sensitive.
    pub themes: Vec<ActionSpec>,
    pub bands: Vec<TimeBand>,
    /// Union of the bands' categories: only these need the local time.
    pub band_categories: CategorySet,
    /// Indexed by [`crate::files::FileKind::index`]; kinds not named are allowed.
    pub files: Vec<ActionSpec>,
    pub max_download_bytes: Option<u64>,
    pub page_text: crate::config::PageText,
    /// The AI services the role may use; `None`: the categories decide.
    pub ai_approved: Option<Vec<crate::ai::AiServiceId>>,
    /// Sign-in to Microsoft and Google limited to the school's accounts.
    pub school_accounts_only: bool,
}

impl RolePolicy {
    /// The action for `category`, and the band that set it, given the local time if known.
    #[inline]
    pub fn category_action(
        &self,
        category: CategoryId,
        local: Option<(u8, u16)>,
    ) -> (ActionSpec, Option<usize>) {
        if let Some((weekday, minute)) = local {
            for (i, band) in self.bands.iter().enumerate() {
                if band.categories.contains(category) && band.active(weekday, minute) {
                    return (band.spec, Some(i));
                }
            }
        }
        let spec = self
            .categories
            .get(category.0 as usize)
            .copied()
            .unwrap_or(self.default);
        (spec, None)
    }

    /// What a download of `kind` does for this role.
    pub fn file_action(&self, kind: crate::files::FileKind) -> ActionSpec {
        self.files
            .get(kind.index())
            .copied()
            .unwrap_or(ActionSpec::Plain(Action::Allow))
    }

    /// Whether any download rule applies (a kind not allowed, or a size limit).
    pub fn checks_downloads(&self) -> bool {
        self.max_download_bytes.is_some()
            || self
                .files
                .iter()
                .any(|s| s.action() != Action::Allow || s.alert().is_some())
    }

    #[inline]
    pub fn theme_action(&self, theme: ThemeId) -> ActionSpec {
        self.themes
            .get(theme.0 as usize)
            .copied()
            .unwrap_or(ActionSpec::Plain(Action::Log))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_table() {
        let cases: &[(&str, Result<u8, ()>)] = &[
            ("mon-fri", Ok(0x1f)),
            ("weekdays", Ok(0x1f)),
            ("weekends", Ok(0x60)),
            ("sat,sun", Ok(0x60)),
            ("mon,wed-fri", Ok(0b11101)),
            ("Monday", Ok(1)),
            ("all", Ok(0x7f)),
            ("fri-mon", Err(())),
            ("funday", Err(())),
            ("", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_days(text).map_err(|_| ()), want, "{text}");
        }
    }

    #[test]
    fn times_table() {
        assert_eq!(parse_time("12:00"), Ok(720));
        assert_eq!(parse_time("00:00"), Ok(0));
        assert_eq!(parse_time("24:00"), Ok(1440));
        for bad in ["24:01", "12:60", "noon", "12", "-1:00", "12:5x"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bands_are_active_in_their_window() {
        let band = TimeBand {
            name: "lunch".into(),
            categories: CategorySet::EMPTY,
            spec: ActionSpec::Plain(Action::Allow),
            days: 0x1f,
            from: 720,
            to: 810,
        };
        assert!(band.active(0, 720));
        assert!(band.active(4, 809));
        assert!(!band.active(4, 810));
        assert!(!band.active(5, 750), "saturday");
        let night = TimeBand {
            from: 22 * 60,
            to: 6 * 60,
            days: 1 << 4,
            ..band
        };
        assert!(night.active(4, 23 * 60), "friday 23:00");
        assert!(
            night.active(5, 60),
            "saturday 01:00 belongs to friday's band"
        );
        assert!(!night.active(3, 23 * 60), "thursday");
    }
}
