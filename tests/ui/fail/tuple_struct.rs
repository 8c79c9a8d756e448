use sealed_session::SessionData;

#[derive(SessionData, Default)]
struct MySession(Option<String>, u64);

fn main() {}
