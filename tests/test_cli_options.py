"""One meaning per option and no silent abbreviations (issue 22, item 5), for the commands of microdl.cli
(the experiment commands: tests/experiments/test_cli_consistency.py)."""

import pytest

from microdl.cli import build_parser, main


class _Stop(Exception):
    pass


@pytest.mark.parametrize("options", [["--device", "cuda"], ["--backend", "cuda"]])
def test_cuda_either_way_puts_the_model_and_the_update_on_the_gpu(monkeypatch, options):
    import microdl.nn
    import microdl.optim

    seen = {}
    real_mlp = microdl.nn.MLP

    def mlp(*args, **kwargs):
        seen["device"] = kwargs["device"]
        return real_mlp(*args, **{**kwargs, "device": "cpu"})  # no GPU needed to see what was asked

    def make_optimizer(name, params, **kwargs):
        seen["backend"] = kwargs["backend"]
        raise _Stop

    monkeypatch.setattr(microdl.nn, "MLP", mlp)
    monkeypatch.setattr(microdl.optim, "make_optimizer", make_optimizer)
    with pytest.raises(_Stop):
        main(["train", "--dataset", "iris", "--epochs", "1", "--quiet", *options])
    assert seen == {"device": "cuda", "backend": "cuda"}


@pytest.mark.parametrize("argv", [
    ["train", "--epoch", "5"], ["train", "--data-set", "iris"], ["train", "--hid", "8"],
    ["predict", "--mod", "m.npz", "--data", "x.csv"], ["train", "--plug", "x.py"],
])
def test_no_option_is_taken_by_a_prefix(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and ("unrecognized arguments" in err or "required" in err), err


def test_every_parser_refuses_abbreviations():
    parser = build_parser()
    assert not parser.allow_abbrev
    assert all(not sub.allow_abbrev for sub in parser.commands.values()), list(parser.commands)


def test_data_is_the_option_for_your_own_file_wherever_a_dataset_is_taken():
    parser = build_parser()
    takes_dataset = [name for name, sub in parser.commands.items()
                     if any("--dataset" in a.option_strings for a in sub._actions)]
    assert set(takes_dataset) == {"train", "compare", "sensitivity"}
    for name in takes_dataset:
        assert any("--data" in a.option_strings for a in parser.commands[name]._actions), name


def test_backend_means_the_optimizer_kernels_and_executor_the_runs():
    parser = build_parser()
    for name, sub in parser.commands.items():
        for action in sub._actions:
            if "--backend" in action.option_strings and action.help != "==SUPPRESS==":
                # (train's auto picks the model's backend with the optimizer's: microdl.nn.choose_backend)
                assert set(action.choices) <= {"auto", "cpu", "numpy", "cuda"}, (name, action.choices)
            if "--executor" in action.option_strings:
                assert set(action.choices) == {"loky", "threading", "dask"}, name
