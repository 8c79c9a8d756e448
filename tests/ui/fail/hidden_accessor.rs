use sealed_session::SessionData;

#[derive(SessionData, Default)]
struct MySession {
    id: Option<String>,
    with: u32,
}

fn main() {}
