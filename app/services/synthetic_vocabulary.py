"""Words the synthetic catalogue (`app.services.synthetic`) builds its records from: research
areas with their topics, methods, data and venues, and the names of places, people and
companies. All fictional; email domains end in `.example` (RFC 2606), which never resolves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    """One research area: what proposals, publications and offers in it talk about.

    `gpu_hours` is the range of GPU hours a project in the area typically asks for;
    `memory_gb` the per-GPU memory it may require."""

    name: str
    topics: tuple[str, ...]
    methods: tuple[str, ...]
    data: tuple[str, ...]
    domains: tuple[str, ...]
    outputs: tuple[str, ...]
    venues: tuple[str, ...]
    gpu_hours: tuple[int, int]
    memory_gb: tuple[int, ...]


AREAS: tuple[Area, ...] = (
    Area(
        "natural language processing",
        (
            "low-resource machine translation",
            "multilingual question answering",
            "long document summarisation",
            "clinical named entity recognition",
            "tokenisation for morphologically rich languages",
            "argument mining in parliamentary debates",
            "hate speech detection across dialects",
        ),
        (
            "cross-lingual transfer",
            "parameter-efficient fine-tuning",
            "contrastive sentence encoders",
            "curriculum learning",
            "back-translation",
            "retrieval-augmented generation",
        ),
        (
            "parallel corpora in under-served languages",
            "annotated customer support conversations",
            "transcribed parliamentary proceedings",
            "de-identified clinical notes",
        ),
        ("legal", "social media", "healthcare", "education"),
        ("an open benchmark", "released model checkpoints", "an annotation toolkit"),
        ("ACL", "EMNLP", "NAACL", "TACL", "COLING"),
        (500, 8_000),
        (24, 40, 48),
    ),
    Area(
        "large language models",
        (
            "reasoning over long contexts",
            "alignment from human and AI feedback",
            "factuality of generated answers",
            "mixture-of-experts scaling",
            "efficient inference for open-weight models",
            "reward model overoptimisation",
            "tool use by language agents",
        ),
        (
            "reinforcement learning from feedback",
            "direct preference optimisation",
            "speculative decoding",
            "quantisation-aware training",
            "continued pretraining",
            "synthetic data generation",
        ),
        (
            "instruction-following dialogues with preference labels",
            "anonymised search queries and clicks",
            "internal code review comments",
            "expert-written reasoning traces",
        ),
        ("code", "education", "finance", "scientific literature"),
        ("open-weight checkpoints", "an evaluation suite", "training recipes"),
        ("NeurIPS", "ICLR", "ICML", "COLM"),
        (8_000, 60_000),
        (80, 141),
    ),
    Area(
        "computer vision",
        (
            "open-vocabulary object detection",
            "video understanding for long clips",
            "3D scene reconstruction",
            "fine-grained species recognition",
            "robust segmentation under domain shift",
            "visual anomaly detection on production lines",
        ),
        (
            "self-supervised pretraining",
            "vision transformers",
            "diffusion models",
            "neural radiance fields",
            "test-time adaptation",
            "knowledge distillation",
        ),
        (
            "labelled images from industrial inspection cameras",
            "dash-cam video with rare events",
            "retail shelf photographs",
            "drone footage of construction sites",
        ),
        ("manufacturing", "retail", "transport", "agriculture"),
        ("a public benchmark", "pretrained backbones", "open training code"),
        ("CVPR", "ICCV", "ECCV", "WACV"),
        (1_000, 20_000),
        (24, 48, 80),
    ),
    Area(
        "medical imaging",
        (
            "early cancer detection in mammography",
            "segmentation of brain tumours in MRI",
            "chest X-ray report generation",
            "histopathology slide classification",
            "uncertainty estimation for clinical triage",
            "federated learning across hospitals",
        ),
        (
            "foundation models for radiology",
            "weakly supervised learning",
            "federated averaging",
            "calibrated ensembles",
            "multiple-instance learning",
        ),
        (
            "de-identified MRI and CT scans with reports",
            "whole-slide histopathology images",
            "screening mammograms with outcomes",
            "ultrasound video from routine care",
        ),
        ("healthcare", "medical imaging"),
        ("a validated model", "an open evaluation protocol", "a clinical study report"),
        ("MICCAI", "MIDL", "Medical Image Analysis", "Radiology: AI"),
        (800, 12_000),
        (24, 40, 80),
    ),
    Area(
        "reinforcement learning",
        (
            "offline reinforcement learning from control logs",
            "sample-efficient exploration",
            "multi-agent coordination",
            "safe policy improvement",
            "credit assignment over long horizons",
            "sim-to-real transfer of controllers",
        ),
        (
            "conservative value estimation",
            "model-based planning",
            "world models",
            "population-based training",
            "policy distillation",
        ),
        (
            "logged sensor readings and operator actions from industrial plants",
            "building climate control logs",
            "game telemetry with player actions",
            "warehouse robot trajectories",
        ),
        ("energy", "manufacturing", "games", "robotics"),
        ("an open-source environment", "a benchmark of logged datasets", "released policies"),
        ("NeurIPS", "ICML", "RLC", "AAMAS"),
        (1_000, 15_000),
        (24, 40),
    ),
    Area(
        "robotics",
        (
            "dexterous manipulation of deformable objects",
            "legged locomotion on rough terrain",
            "language-conditioned robot policies",
            "human-robot collaboration in warehouses",
            "visual navigation in crowded spaces",
        ),
        (
            "imitation learning",
            "diffusion policies",
            "sim-to-real transfer",
            "vision-language-action models",
            "tactile sensing",
        ),
        (
            "teleoperation demonstrations",
            "warehouse picking logs with camera streams",
            "lidar scans from delivery robots",
        ),
        ("robotics", "transport", "manufacturing"),
        ("open hardware designs", "a demonstration dataset", "released controllers"),
        ("ICRA", "IROS", "CoRL", "RSS"),
        (1_000, 12_000),
        (24, 48),
    ),
    Area(
        "speech and audio",
        (
            "speech recognition for accented English",
            "low-latency speech translation",
            "speaker diarisation in meetings",
            "music source separation",
            "detection of synthetic voices",
        ),
        (
            "self-supervised speech representations",
            "streaming transducers",
            "neural audio codecs",
            "data augmentation with room simulation",
        ),
        (
            "call-centre recordings with transcripts",
            "meeting recordings with speaker labels",
            "licensed music stems",
        ),
        ("speech", "retail", "media"),
        ("an open speech corpus", "released acoustic models", "an evaluation toolkit"),
        ("Interspeech", "ICASSP", "TASLP"),
        (500, 10_000),
        (24, 40, 80),
    ),
    Area(
        "graph learning",
        (
            "fraud detection in transaction networks",
            "link prediction in knowledge graphs",
            "scalable message passing on billion-edge graphs",
            "molecular property prediction",
            "traffic forecasting on road networks",
        ),
        (
            "graph neural networks",
            "graph transformers",
            "temporal graph networks",
            "contrastive graph pretraining",
        ),
        (
            "anonymised payment transaction graphs",
            "supply-chain shipment networks",
            "public transport ridership graphs",
        ),
        ("finance", "transport", "retail"),
        ("an open benchmark graph", "a scalable training library", "released models"),
        ("KDD", "WWW", "LoG", "ICLR"),
        (300, 6_000),
        (24, 48),
    ),
    Area(
        "computational biology",
        (
            "protein structure and function prediction",
            "enzyme design for industrial catalysis",
            "single-cell gene expression atlases",
            "antibody binding affinity",
            "variant effect prediction in rare disease",
        ),
        (
            "protein language models",
            "equivariant neural networks",
            "generative design with diffusion",
            "active learning with wet-lab feedback",
        ),
        (
            "proprietary protein assay measurements",
            "single-cell sequencing data",
            "de-identified genomes with phenotypes",
        ),
        ("genomics", "healthcare", "chemistry"),
        ("released model weights", "a validated design pipeline", "an open assay dataset"),
        ("Nature Methods", "Bioinformatics", "RECOMB", "ISMB"),
        (2_000, 30_000),
        (40, 80, 141),
    ),
    Area(
        "climate and earth observation",
        (
            "crop yield forecasting from satellite imagery",
            "flood mapping with radar images",
            "downscaling of climate projections",
            "methane plume detection",
            "wildfire risk prediction",
        ),
        (
            "spatio-temporal transformers",
            "foundation models for remote sensing",
            "physics-informed neural networks",
            "probabilistic forecasting",
        ),
        (
            "high-resolution commercial satellite imagery",
            "weather station records",
            "field-level harvest records from farms",
        ),
        ("satellite imagery", "climate", "agriculture", "energy"),
        ("open maps", "a forecasting benchmark", "released models"),
        ("NeurIPS CCAI", "Remote Sensing of Environment", "IGARSS"),
        (1_000, 25_000),
        (40, 80),
    ),
    Area(
        "materials and chemistry",
        (
            "battery electrolyte discovery",
            "crystal structure prediction",
            "reaction yield prediction",
            "catalyst screening",
            "polymer property prediction",
        ),
        (
            "machine-learned interatomic potentials",
            "Bayesian optimisation",
            "graph neural networks",
            "generative models for molecules",
        ),
        (
            "high-throughput experimental measurements",
            "electronic lab notebooks with reaction outcomes",
            "density functional theory calculations",
        ),
        ("chemistry", "materials", "energy"),
        ("an open materials database", "released potentials", "a screening pipeline"),
        ("npj Computational Materials", "JACS", "Digital Discovery"),
        (2_000, 25_000),
        (40, 80),
    ),
    Area(
        "ML systems and efficiency",
        (
            "energy-efficient training of large models",
            "distributed optimisers at scale",
            "compiler autotuning for accelerators",
            "serving models on edge devices",
            "carbon-aware job scheduling",
        ),
        (
            "mixed-precision training",
            "pipeline parallelism",
            "sparsity and pruning",
            "learned cost models",
        ),
        (
            "cluster job traces with power readings",
            "production inference latency logs",
        ),
        ("energy", "code"),
        ("an open-source library", "a reproducible benchmark", "released traces"),
        ("MLSys", "OSDI", "SOSP", "EuroSys"),
        (2_000, 40_000),
        (80, 141, 192),
    ),
    Area(
        "fairness and privacy",
        (
            "auditing hiring algorithms for bias",
            "differentially private model training",
            "membership inference against language models",
            "fair credit scoring",
            "synthetic data for privacy-preserving sharing",
        ),
        (
            "differential privacy",
            "causal fairness analysis",
            "secure aggregation",
            "counterfactual explanations",
        ),
        (
            "historical loan applications with outcomes",
            "anonymised recruitment pipelines",
            "insurance claims records",
        ),
        ("finance", "legal", "healthcare"),
        ("an audit toolkit", "a public report", "open-source privacy libraries"),
        ("FAccT", "USENIX Security", "PETS", "AIES"),
        (200, 4_000),
        (24, 40),
    ),
    Area(
        "time series forecasting",
        (
            "electricity demand forecasting",
            "predictive maintenance of wind turbines",
            "retail demand forecasting",
            "anomaly detection in sensor streams",
            "forecasting hospital bed occupancy",
        ),
        (
            "temporal foundation models",
            "probabilistic forecasting",
            "state-space models",
            "hierarchical reconciliation",
        ),
        (
            "smart-meter readings",
            "turbine vibration and SCADA logs",
            "point-of-sale transactions",
        ),
        ("energy", "manufacturing", "retail", "healthcare"),
        ("an open forecasting benchmark", "released models", "a forecasting library"),
        ("KDD", "ICML", "International Journal of Forecasting"),
        (200, 5_000),
        (24, 40),
    ),
    Area(
        "recommender systems",
        (
            "fair exposure for new creators",
            "session-based recommendation",
            "long-term user satisfaction",
            "off-policy evaluation of recommenders",
        ),
        (
            "sequential transformers",
            "counterfactual learning to rank",
            "contextual bandits",
            "two-tower retrieval",
        ),
        (
            "anonymised streaming interaction logs",
            "e-commerce click and purchase sessions",
            "news reading histories",
        ),
        ("retail", "media", "social media"),
        ("a public interaction dataset", "an evaluation framework", "open-source baselines"),
        ("RecSys", "SIGIR", "WSDM", "KDD"),
        (500, 8_000),
        (24, 40, 80),
    ),
    Area(
        "code generation",
        (
            "automated program repair",
            "test generation for legacy code",
            "secure code completion",
            "translation of COBOL to modern languages",
            "formal verification with language models",
        ),
        (
            "code language models",
            "execution feedback",
            "retrieval over repositories",
            "reinforcement learning from unit tests",
        ),
        (
            "internal repositories with commit histories",
            "bug reports linked to fixes",
            "code review threads",
        ),
        ("code",),
        ("an open benchmark of real bugs", "released checkpoints", "a developer tool"),
        ("ICSE", "FSE", "ICLR", "NeurIPS"),
        (2_000, 30_000),
        (80, 141),
    ),
)

CHALLENGES = (
    "labelled data is scarce and expensive to collect",
    "published benchmarks do not reflect deployment conditions",
    "current methods are too expensive to train and evaluate at realistic scale",
    "methods that work in the lab degrade in the field",
    "results are rarely reproduced outside the groups that proposed them",
    "existing models ignore the structure that practitioners care about",
)
FINDINGS = (
    "small curated datasets can beat large noisy ones",
    "rankings of methods change once evaluated on real operational data",
    "simple baselines are often under-tuned in the literature",
    "scaling model size helps less than improving the data",
    "uncertainty estimates are badly calibrated under distribution shift",
)
GOALS = (
    "close the gap between benchmark results and real deployments",
    "cut the cost of training by an order of magnitude",
    "produce models that practitioners can audit",
    "make results reproducible on modest hardware",
    "establish a shared benchmark for the community",
)
COMPUTE_USES = (
    "ablations across several random seeds",
    "pretraining a mid-sized model before fine-tuning",
    "hyperparameter sweeps over several method families",
    "training ensembles for uncertainty estimates",
    "large-scale evaluation on held-out data",
)
TITLE_PATTERNS = (
    "{Method} for {topic}",
    "{Topic} with {method}",
    "Towards reliable {topic}",
    "Scaling {method} to {topic}",
    "{Topic} from {data}",
    "Rethinking {topic}: {method} in practice",
    "Benchmarking {method} for {topic}",
)
PUBLICATION_PATTERNS = (
    "{Method} for {topic}",
    "On the limits of {method} in {topic}",
    "A study of {topic} with {method}",
    "{Topic}: a benchmark and baselines",
    "Revisiting {method} for {topic}",
    "Learning {topic} from {data}",
)
DECLINE_REASONS = (
    "",
    "",
    "Our timeline does not fit this year.",
    "The terms on publication do not work for us.",
    "We are already working with another partner on this.",
    "The hardware does not suit the project.",
)

# GPU types the eligibility check knows (matching.eligibility.GPU_TIER), with per-GPU memory.
GPUS: tuple[tuple[str, int], ...] = (
    ("A10G", 24),
    ("L40S", 48),
    ("RTX 6000 Ada", 48),
    ("A100", 40),
    ("A100", 80),
    ("H100", 80),
    ("MI300X", 192),
    ("H200", 141),
)
HOURS_PER_PROJECT = (500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 60_000)

PLACES = (
    "Northbridge", "Kestrel", "Valdora", "Eastmoor", "Lakeshore", "Westhaven", "Ashford",
    "Brightwater", "Carrow", "Dunmere", "Elmsworth", "Fairhollow", "Glenrock", "Harrowgate",
    "Ivybridge", "Juniper Bay", "Kingsreach", "Larkfield", "Millbrook", "Norwood", "Oakhurst",
    "Pinecrest", "Queensmoor", "Redcliff", "Stonehaven", "Thornbury", "Upperdale", "Vantmoor",
    "Whitlow", "Yarrowby", "Zellingen", "Altamar", "Borealis", "Castellane", "Drumlin",
    "Esterholt", "Falkirkby", "Greyhaven", "Halloway", "Islington Vale", "Jorvik", "Kelmscott",
    "Lindqvist", "Marisol", "Nordvik", "Ostrava Nova", "Porthleven", "Quillon", "Rosmarin",
    "Saltmarsh", "Tavira", "Ulvsund", "Verano", "Wexmoor", "Ystrad", "Zafra",
)  # fmt: skip
UNIVERSITY_PATTERNS = (
    "University of {place}",
    "{place} Institute of Technology",
    "{place} University",
    "{place} Polytechnic",
    "{place} College of Science",
)
COMPANY_FIRST = (
    "Voltaic", "Meridian", "Radiant", "Furrowline", "Orbital", "Lanternfish", "Cadence",
    "Northgrid", "Brightclause", "Palletwise", "Ledgerlight", "Transitmesh", "Helios", "Quartz",
    "Cobalt", "Juniper", "Tessellate", "Kiln", "Harbor", "Vireo", "Solstice", "Anvil",
    "Beacon", "Cinder", "Driftwood", "Ember", "Fathom", "Gossamer", "Halcyon", "Isotope",
    "Jetstream", "Keystone", "Lumen", "Monolith", "Nimbus", "Obsidian", "Prism", "Quill",
    "Riverstone", "Sable", "Tundra", "Umbra", "Vector", "Wavelength", "Xenon", "Yieldwise",
)  # fmt: skip
COMPANY_SECOND = (
    "Cloud", "Labs", "Health", "Analytics", "Robotics", "Data", "Systems", "AI", "Compute",
    "Bio", "Energy", "Materials", "Mobility", "Insights", "Research",
)  # fmt: skip
OTHER_ORGANISATIONS = (
    "{place} Research Council",
    "{place} Technology Transfer Office",
    "{place} Science Foundation",
    "{place} AI Consortium",
)
FIRST_NAMES = (
    "Adaeze", "Ahmed", "Aiko", "Alejandro", "Amara", "Anika", "Bjorn", "Camila", "Chen",
    "Chiara", "Dmitri", "Elif", "Emeka", "Fatima", "Felix", "Grace", "Hana", "Ines", "Ivan",
    "Jamal", "Jia", "Kofi", "Laila", "Lars", "Lucia", "Mateo", "Mei", "Nadia", "Nikhil",
    "Olga", "Omar", "Priya", "Rafael", "Rania", "Sofia", "Soren", "Tariq", "Tomasz", "Uma",
    "Valentina", "Wei", "Yara", "Yusuf", "Zainab", "Zoltan", "Ana", "Benedikt", "Chloe",
)  # fmt: skip
LAST_NAMES = (
    "Okafor", "Raghunathan", "Wisniewski", "Brandt", "Marchetti", "Okonkwo", "Tanaka",
    "Garcia", "Haddad", "Johansson", "Kowalski", "Li", "Mensah", "Nakamura", "Oliveira",
    "Petrov", "Quispe", "Rossi", "Schmidt", "Takahashi", "Usman", "Virtanen", "Wang",
    "Yilmaz", "Zhang", "Andersen", "Bianchi", "Costa", "Dubois", "Eriksson", "Fernandez",
    "Gupta", "Hoffmann", "Ibrahim", "Jensen", "Kim", "Lopez", "Moreau", "Nguyen", "Osei",
    "Park", "Rahman", "Silva", "Torres", "Ueda", "Vargas", "Weber", "Xu",
)  # fmt: skip
