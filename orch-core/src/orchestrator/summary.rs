//! Model-written event summaries (being written).
