from pathlib import Path

from tierlift.core.config import secret


def test_a_secret_comes_from_its_variable_its_file_or_the_secrets_folder(tmp_path: Path) -> None:
    (tmp_path / "OPENAI_API_KEY").write_text("sk-from-folder\n")
    (tmp_path / "db").write_text("postgresql://u:p@db/ledger\n")
    assert secret("OPENAI_API_KEY", {"OPENAI_API_KEY": "sk-plain"}) == "sk-plain"
    assert secret("TIERLIFT_DATABASE_URL", {"TIERLIFT_DATABASE_URL_FILE": str(tmp_path / "db")}) == (
        "postgresql://u:p@db/ledger"
    )
    assert secret("OPENAI_API_KEY", {"TIERLIFT_SECRETS_DIR": str(tmp_path)}) == "sk-from-folder"
    assert secret("GROQ_API_KEY", {"TIERLIFT_SECRETS_DIR": str(tmp_path)}) == ""
