//! Plan, the fourth layer: approved volumes × bundle → ordered kernel steps. Pure: no file
//! is read and nothing is changed here, so every decision is unit-tested
//! without root.

mod build;
pub(crate) mod selinux;
mod step;

pub(crate) use build::build;
pub use step::OwnerPlan;
pub(crate) use step::{
    LabelPlan, MountAttrs, MountPlan, MountStep, NewDir, NfsStep, SourceStep, NEW_VOLUME_MODE,
};
