"""The README's quick start and .ci/run stay in step."""

import re


def quick_start_commands(readme: str) -> list[str]:
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_command(repo):
    commands = quick_start_commands((repo / "README.md").read_text())
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    ci_lines = (repo / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == commands[1]
    assert "pytest" in commands[1]
