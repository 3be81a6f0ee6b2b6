# VM side of the corpus comparison: reads the cases file, prints the results as one JSON document.
import json
import hostargs
from corpus_eval import run_cases

with open(hostargs.arg) as f:
    cases = json.load(f)
print("@@JSON" + json.dumps(run_cases(cases)))
