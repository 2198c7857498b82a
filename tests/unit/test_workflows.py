"""The GitHub pipeline: tests gate the images, staging comes before an approved production deploy, and
every deploy passes each template parameter that has no default."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "pipeline.yml"


def jobs() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def test_images_wait_for_the_tests_and_production_for_an_approved_staging():
    pipeline = jobs()
    assert "make test" in str(pipeline["test"]["steps"])
    assert set(pipeline["images"]["needs"]) == {"test", "containers"}
    assert pipeline["staging"]["needs"] == "images"
    assert "staging" in pipeline["production"]["needs"]
    assert pipeline["staging"]["environment"] == "staging"
    assert pipeline["production"]["environment"] == "production"


def test_every_deploy_passes_each_parameter_the_template_requires():
    template = cfn_yaml.load(str(ROOT / "deploy" / "aws" / "moviepipe.yaml"))
    required = {name for name, parameter in template["Parameters"].items() if "Default" not in parameter}
    for job in ("staging", "production"):
        script = "\n".join(step.get("run", "") for step in jobs()[job]["steps"])
        assert "--template-file deploy/aws/moviepipe.yaml" in script
        passed = set(re.findall(r'"?(\w+)=', script.split("--parameter-overrides", 1)[1]))
        assert required <= passed, required - passed
