//! Runs SQL as an administrator on the raw relations of a workspace
//! (no policies): `cargo run --example debug_sql -- DIR SQL`.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(sql)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: debug_sql DIR SQL");
        std::process::exit(2);
    };
    let engine = veil_engine::Engine::load(dir).await?;
    let batches = engine.admin_sql(sql).await?;
    println!("{}", veil_engine::output::table(&batches)?);
    Ok(())
}
