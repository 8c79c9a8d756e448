use sealed_session::SessionData;

#[derive(Default, Clone)]
struct Connection;

#[derive(SessionData, Default)]
struct MySession {
    user_id: Option<String>,
    connection: Connection,
}

fn main() {}
