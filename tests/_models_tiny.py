"""A tiny, obviously separable labeled slice shared by the models tests."""
import pandas as pd
import pytest
import torch

from core.threads import set_threads

POS = ["Profit rose sharply and beat expectations .", "Sales jumped 40 % to a record high .",
       "The company raised its full-year guidance .", "Shares surged after strong quarterly earnings .",
       "Operating margin improved significantly .", "Net income doubled from a year earlier ."]
NEG = ["Profit fell sharply and missed expectations .", "Sales dropped 40 % to a record low .",
       "The company cut its full-year guidance .", "Shares plunged after weak quarterly earnings .",
       "Operating loss widened significantly .", "Net income halved from a year earlier ."]
NEU = ["The company is headquartered in Helsinki .", "The annual meeting will be held on Tuesday .",
       "The report covers the period January to March .", "The firm operates in 12 countries .",
       "The board consists of seven members .", "The shares are listed on the main exchange ."]
TINY = pd.DataFrame({"text": POS + NEG + NEU, "label": ["positive"] * 6 + ["negative"] * 6 + ["neutral"] * 6})


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One torch thread: on a shared 2-core machine two threads per test run 3-5x slower."""
    before = torch.get_num_threads()
    set_threads(1)
    yield
    set_threads(before)
