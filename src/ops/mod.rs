//! One module per stage; each builds its plan and does the work. Ops never print (they return
//! reports for `ui`) and never spawn processes except through a `tool::Runner`.

pub mod build;
pub mod cluster;
pub mod doctor;
pub mod up;
pub mod validate;
pub mod values;
