//! `train.log` in the reference's layout (docs/run-folder.md#trainlog): a header, one row per
//! epoch with fixed separators, and the final robust block.
use super::result::{EpochRecord, FinalTable};
use crate::config::JobConfig;
use crate::vocab::{DatasetKind, Mode};

/// Which of the research code's tables a method's `train.log` holds; each method says which
/// (`TrainingMethod::train_log`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The main scripts' logged table, headed by the method's name in the research code (`PGD_AT`).
    Main {
        name: &'static str,
        columns: Columns,
    },
    /// A tab-separated table of the evaluated network and the one tested beside it, unprefixed
    /// (Generalist's code).
    Learners,
}

/// The training columns of the main scripts' table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// Clean statistics only: the method crafts no adversarial examples (ST).
    Clean,
    /// Adversarial, then clean statistics.
    Adversarial,
    /// As `Adversarial`, and last the robust teacher's accuracy on the adversarial examples (KD-AT).
    AdversarialAndTeacher,
}

/// The reference's method name in mode `mode`: `PGD_AT`, `PGD_AT_FixRAT`, `PGD_AT_FixRAT_AdaRAT`, ...
fn method_name(base: &str, mode: Mode) -> String {
    match mode {
        Mode::Baseline => base.to_string(),
        Mode::FixRat => format!("{base}_FixRAT"),
        Mode::AdaRat => format!("{base}_FixRAT_AdaRAT"),
    }
}

const HEADER: &str = "epoch   learning_rate   train_time   train_AE_loss   train_AE_acc   train_clean_loss   \
train_clean_acc   test_clean_loss   test_clean_acc   test_FGSM_loss   test_FGSM_acc   test_PGD_loss   test_PGD_acc";
const ST_HEADER: &str =
    "epoch   learning_rate   train_time   train_clean_loss   train_clean_acc   test_clean_loss   \
test_clean_acc   test_FGSM_loss   test_FGSM_acc   test_PGD_loss   test_PGD_acc";

fn loss(value: f64) -> String {
    format!("{value:07.4}")
}

fn acc(value: f64) -> String {
    format!("{value:05.2}%")
}

/// One epoch row with the reference's separators.
fn row(r: &EpochRecord, columns: Columns) -> String {
    let mut fields: Vec<(String, usize)> = vec![
        (format!("{:03}", r.epoch), 5),
        (format!("{:.4}", r.lr), 10),
        (format!("{:06.2}", r.seconds), 7),
    ];
    if columns == Columns::Clean {
        fields.push((loss(r.train_clean_loss), 12));
    } else {
        fields.extend([
            (loss(r.train_adv_loss), 9),
            (acc(r.train_adv_acc), 9),
            (loss(r.train_clean_loss), 12),
        ]);
    }
    fields.extend([
        (acc(r.train_clean_acc), 12),
        (loss(r.test_clean_loss), 11),
        (acc(r.test_clean_acc), 11),
        (loss(r.test_fgsm_loss), 10),
        (acc(r.test_fgsm_acc), 10),
        (loss(r.test_pgd_loss), 9),
        (acc(r.test_pgd_acc), 0),
    ]);
    // KD-AT's extra last column: 9 spaces, then the robust teacher's accuracy (section 7).
    if let (Columns::AdversarialAndTeacher, Some(teacher)) = (columns, r.train_teacher_acc) {
        if let Some((_, gap)) = fields.last_mut() {
            *gap = 9;
        }
        fields.push((acc(teacher), 0));
    }
    fields
        .iter()
        .map(|(text, gap)| format!("{text}{}", " ".repeat(*gap)))
        .collect()
}

/// The argparse-like line the reference writes second.
fn namespace(cfg: &JobConfig) -> String {
    let flag = |on: bool| if on { "True" } else { "False" };
    let mut fields = vec![
        format!("FixRAT={}", flag(cfg.mode != Mode::Baseline)),
        format!("AdaRAT={}", flag(cfg.mode == Mode::AdaRat)),
        format!("batch_size={}", cfg.batch_size),
        format!("epoch={}", cfg.epochs),
        format!("epsilon={}", cfg.attack.epsilon),
        format!("learning_rate={}", cfg.learning_rate),
        format!("model='{}'", cfg.model),
        format!("seed={}", cfg.seed),
        format!("step_num={}", cfg.attack.steps),
        format!("step_size={}", cfg.attack.step_size),
        format!("weight_decay={}", cfg.weight_decay),
    ];
    if let Some(r) = &cfg.ratio {
        fields.extend([
            format!("beta={}", r.beta),
            format!("up_lim={}", r.up),
            format!("down_lim={}", r.down),
            format!("tao={}", r.tau),
        ]);
    }
    format!("Namespace({})", fields.join(", "))
}

/// The whole log, rebuilt from the records so that a resumed run never repeats or loses a row.
pub fn render(
    cfg: &JobConfig,
    layout: Layout,
    started_at: &str,
    records: &[EpochRecord],
    final_table: Option<&FinalTable>,
) -> String {
    let Layout::Main { name, columns } = layout else {
        return render_learners(cfg.dataset, records, final_table);
    };
    let prefixed = |time: &str, line: &str| format!("[{time}] - {line}\n");
    let mut out = String::new();
    out += &prefixed(
        started_at,
        &format!("training method: {}", method_name(name, cfg.mode)),
    );
    out += &prefixed(started_at, &namespace(cfg));
    let header = match columns {
        Columns::Clean => ST_HEADER.to_string(),
        Columns::Adversarial => HEADER.to_string(),
        Columns::AdversarialAndTeacher => format!("{HEADER}   teacher"),
    };
    out += &prefixed(started_at, &header);
    for r in records {
        out += &prefixed(&r.finished_at, &row(r, columns));
    }
    if let (Some(table), Some(last)) = (final_table, records.last()) {
        let time = &last.finished_at;
        out += &prefixed(time, " ");
        out += &prefixed(time, " ");
        out += &prefixed(time, "final robust result:");
        for (name, value) in table.attacks() {
            if let Some(value) = value {
                out += &prefixed(time, &format!("{name} ACC: {value:05.2}"));
            }
        }
    }
    out
}

/// [`Layout::Learners`], Generalist's own table (docs/run-folder.md#trainlog): every cell `%.6f` or
/// a name, each followed by a tab, no logging prefix. `Natural`/`PGD20` hold the network tested
/// beside (the ST teacher) clean and PGD-K accuracy, `ema_*` the evaluated one's (the global model,
/// docs/protocol.md Q14); `Time` is the cumulative training time (CIFAR-10 only).
fn render_learners(
    dataset: DatasetKind,
    records: &[EpochRecord],
    final_table: Option<&FinalTable>,
) -> String {
    let line = |cells: &[String]| cells.iter().map(|c| format!("{c}\t")).collect::<String>() + "\n";
    let number =
        |value: Option<f64>| value.map_or_else(|| "nan".to_string(), |v| format!("{v:.6}"));
    let with_time = dataset != DatasetKind::Cifar100;
    let mut header = vec!["Epoch", "Natural", "PGD20", "ema_Natural", "ema_PGD20"];
    if with_time {
        header.push("Time");
    }
    let mut out = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    let mut training_seconds = 0.0;
    for r in records {
        training_seconds += r.seconds;
        let mut cells = vec![
            number(Some(r.epoch as f64)),
            number(r.test_st_clean_acc),
            number(r.test_st_pgd_acc),
            number(Some(r.test_clean_acc)),
            number(Some(r.test_pgd_acc)),
        ];
        if with_time {
            cells.push(number(Some(training_seconds)));
        }
        out += &line(&cells);
    }
    if let Some(table) = final_table {
        let attacks = table.attacks();
        let mut names = vec!["Epoch".to_string(), "clean".to_string()];
        names.extend(attacks.iter().map(|(name, _)| name.to_string()));
        out += &line(&names);
        let mut cells = vec![number(Some(1_000_001.0)), number(table.clean)];
        cells.extend(attacks.iter().map(|(_, value)| number(*value)));
        out += &line(&cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::FinalAttack;

    fn record() -> EpochRecord {
        EpochRecord {
            epoch: 1,
            lr: 0.1,
            train_loss: 0.0,
            train_clean_acc: 50.0,
            train_adv_acc: 45.68,
            test_clean_acc: 60.0,
            test_fgsm_acc: 40.0,
            test_pgd_acc: 35.0,
            ratio_mean: None,
            clean_branch_share: None,
            seconds: 123.456,
            images_per_second: 0.0,
            test_seconds: 0.0,
            train_clean_loss: 1.1,
            train_adv_loss: 1.23456,
            test_clean_loss: 0.9,
            test_fgsm_loss: 1.2,
            test_pgd_loss: 1.3,
            finished_at: "2024/05/29 10:00:00".into(),
            train_teacher_acc: None,
            test_st_clean_acc: None,
            test_st_pgd_acc: None,
        }
    }

    #[test]
    fn row_matches_the_reference_example() {
        let expected = "001     0.1000          123.46       01.2346         45.68%         01.1000            \
50.00%            00.9000           60.00%           01.2000          40.00%          01.3000         35.00%";
        assert_eq!(row(&record(), Columns::Adversarial), expected);
    }

    #[test]
    fn the_teacher_column_comes_last_when_asked_for() {
        let with_teacher = EpochRecord {
            train_teacher_acc: Some(41.5),
            ..record()
        };
        let standard = row(&record(), Columns::Adversarial);
        assert_eq!(
            row(&with_teacher, Columns::AdversarialAndTeacher),
            format!("{standard}         41.50%")
        );
        assert_eq!(row(&with_teacher, Columns::Adversarial), standard);
    }

    #[test]
    fn st_rows_have_no_adversarial_fields() {
        let st = row(&record(), Columns::Clean);
        assert!(st.starts_with("001     0.1000          123.46       01.1000            50.00%"));
        assert!(!st.contains("45.68%"));
    }

    #[test]
    fn the_learners_table_is_tab_separated() {
        let r = EpochRecord {
            test_st_clean_acc: Some(55.5),
            test_st_pgd_acc: Some(20.25),
            ..record()
        };
        let table = FinalTable {
            clean: Some(61.0),
            accuracies: [(FinalAttack::Fgsm, 40.0), (FinalAttack::Pgd10, 35.0)]
                .into_iter()
                .collect(),
            ..FinalTable::default()
        };
        let cifar10 = render_learners(DatasetKind::Cifar10, &[r.clone(), r.clone()], Some(&table));
        let lines: Vec<&str> = cifar10.lines().collect();
        assert_eq!(
            lines[0],
            "Epoch\tNatural\tPGD20\tema_Natural\tema_PGD20\tTime\t"
        );
        assert_eq!(
            lines[1],
            "1.000000\t55.500000\t20.250000\t60.000000\t35.000000\t123.456000\t"
        );
        assert!(
            lines[2].ends_with("\t246.912000\t"),
            "cumulative time: {}",
            lines[2]
        );
        assert_eq!(
            lines[3],
            "Epoch\tclean\tFGSM\tPGD10\tPGD20\tPGD50\tCW\tAA\t"
        );
        assert_eq!(
            lines[4],
            "1000001.000000\t61.000000\t40.000000\t35.000000\tnan\tnan\tnan\tnan\t"
        );
        let cifar100 = render_learners(DatasetKind::Cifar100, &[r], None);
        assert_eq!(
            cifar100,
            "Epoch\tNatural\tPGD20\tema_Natural\tema_PGD20\t\n\
             1.000000\t55.500000\t20.250000\t60.000000\t35.000000\t\n"
        );
    }

    #[test]
    fn method_names_follow_the_reference() {
        assert_eq!(method_name("PGD_AT", Mode::Baseline), "PGD_AT");
        assert_eq!(method_name("PGD_AT", Mode::FixRat), "PGD_AT_FixRAT");
        assert_eq!(method_name("KD_AT", Mode::AdaRat), "KD_AT_FixRAT_AdaRAT");
    }
}
