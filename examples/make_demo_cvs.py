"""Write demo_cvs.csv: short synthetic CVs, ML researchers (category 1) and other tech staff (0).

Every sentence below was written for this demo; no real person's CV is used.
A few rows carry the defects real exports have (HTML line breaks, double-encoded
UTF-8, a duplicate, an empty text, a missing label) so the demo shows how
ingestion repairs or sets them aside. Run `python examples/make_demo_cvs.py`
to regenerate; the output is deterministic.
"""

import csv
import random
from pathlib import Path

EMPLOYERS = [
    "Northwind Analytics",
    "Bluepeak Consulting",
    "Cobalt Systems",
    "Harbor Digital",
    "Quarry Labs",
    "Meridian IT",
]

ML_EXPERT = [
    "Research Scientist: published papers on reinforcement learning and policy optimization at NeurIPS and ICML.",
    "Trained large language models with distributed data parallel training across GPU clusters.",
    "Developed novel transformer architectures for low-resource machine translation.",
    "PhD thesis on Bayesian deep learning and uncertainty estimation in neural networks.",
    "Designed contrastive self-supervised learning objectives for representation learning.",
    "Led research on diffusion models for image generation and evaluated sample quality.",
    "Built evaluation benchmarks for robustness to adversarial examples.",
    "Implemented gradient-based meta-learning methods and ran ablation studies.",
    "Fine-tuned pretrained language models with reinforcement learning from human feedback.",
    "Authored work on graph neural networks for molecular property prediction.",
    "Investigated scaling laws of neural language models and compute-optimal training.",
    "Applied variational inference and probabilistic modeling to time series forecasting research.",
    "Reviewer for ICLR and NeurIPS; mentored PhD students in machine learning research.",
    "Studied mechanistic interpretability of transformer attention heads.",
]

OTHER_TECH = [
    "Managed enterprise client accounts and grew recurring revenue in the retail sector.",
    "Configured CI/CD pipelines with Jenkins and maintained Kubernetes clusters.",
    "Led agile delivery of a customer portal as scrum master for two teams.",
    "Built REST APIs in Java Spring Boot and optimized SQL queries for reporting.",
    "Ran vendor negotiations and procurement for cloud infrastructure contracts.",
    "Designed responsive web pages in React and improved accessibility scores.",
    "Coordinated ERP migration projects and trained end users on SAP modules.",
    "Wrote marketing copy and ran campaigns for B2B software launches.",
    "Administered Windows servers, Active Directory and network firewalls.",
    "Prepared business requirements documents and stakeholder presentations.",
    "Delivered Power BI dashboards for finance and sales operations.",
    "Handled recruitment of software engineers and onboarding of new hires.",
    "Performed manual and automated regression testing with Selenium.",
    "Supported help desk tickets and managed IT asset inventory.",
]

SHARED = [
    "Familiar with machine learning concepts and Python.",
    "Worked with cross-functional teams in a fast-paced consultancy.",
    "Presented results to clients and senior stakeholders.",
    "Experience with cloud platforms such as AWS and Azure.",
]


def cv(rng: random.Random, own: list[str], title: str) -> str:
    """One made-up CV: an employer and title, five sentences of its own kind and two shared by both kinds."""
    employer = rng.choice(EMPLOYERS)
    sentences = rng.sample(own, 5) + rng.sample(SHARED, 2)
    rng.shuffle(sentences)
    return f"Experiences: {employer} ({title}): " + " ".join(sentences)


def rows(seed: int = 7) -> list[dict]:
    """The demo table's rows: 20 ML experts and 20 others, then the defects real exports have."""
    rng = random.Random(seed)
    out = []
    for _ in range(20):
        out.append({"cv_text": cv(rng, ML_EXPERT, "Research Scientist"), "category": 1})
        out.append({"cv_text": cv(rng, OTHER_TECH, rng.choice(["Consultant", "Engineer", "Manager"])), "category": 0})
    # defects seen in real exports
    out[0]["cv_text"] = out[0]["cv_text"].replace(". ", ".<br>", 2)
    out[3]["cv_text"] += " Wrote a survey on naïve Bayes classifiers.".encode().decode("latin-1")
    out.append(dict(out[5]))  # exact duplicate
    out.append({"cv_text": "   ", "category": 0})  # empty text
    out.append({"cv_text": cv(rng, ML_EXPERT, "Research Engineer"), "category": ""})  # missing label
    return out


if __name__ == "__main__":
    target = Path(__file__).with_name("demo_cvs.csv")
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["cv_text", "category"])
        writer.writeheader()
        writer.writerows(rows())
    print(target)
