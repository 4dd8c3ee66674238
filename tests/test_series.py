"""charrnn.series as a library: the generator, tasks, the Keras-like model, training, baselines, checkpoints."""

import numpy as np
import pytest

from charrnn.errors import CharrnnError
from charrnn.series import (
    LinearForecaster,
    build_model,
    generate_data,
    generate_time_series,
    load_model,
    make_task,
    naive_forecast,
    save_model,
)
from charrnn.series.fit import normalization


def test_generator_is_the_seeds_formula_and_seeded():
    series = generate_time_series(5, 51, seed=3)
    assert series.shape == (5, 51, 1) and series.dtype == np.float32
    rng = np.random.default_rng(3)
    f1, f2, o1, o2 = rng.random((4, 5, 1))
    t = np.linspace(0, 1, 51)
    expected = 0.5 * np.sin((t - o1) * (f1 * 10 + 10)) + 0.2 * np.sin((t - o2) * (f2 * 20 + 20))
    expected += 0.1 * (rng.random((5, 51)) - 0.5)
    np.testing.assert_allclose(series[..., 0], expected, atol=1e-6)
    assert np.array_equal(series, generate_time_series(5, 51, seed=3))
    assert not np.array_equal(series, generate_time_series(5, 51, seed=4))


def test_seed_split_is_7000_2000_1000():
    data = generate_data(10_000, 51, seed=42)
    assert (data.train.shape, data.valid.shape, data.test.shape) == ((7000, 51), (2000, 51), (1000, 51))


def test_make_task_shapes_and_targets():
    series = np.arange(2 * 12, dtype=float).reshape(2, 12)
    X, y = make_task(series, 8, 3)
    assert X.shape == (2, 8, 1) and y.shape == (2, 3)
    assert np.array_equal(y, series[:, 8:11])
    X, y = make_task(series, 8, 3, every_step=True)
    assert y.shape == (2, 8, 3)
    for t in range(8):
        for k in range(3):
            assert np.array_equal(y[:, t, k], series[:, t + 1 + k])
    with pytest.raises(CharrnnError, match="needs series of 13"):
        make_task(series, 10, 3)


def test_summary_counts_parameters_like_keras():
    assert build_model((1,), dense_head=False).flat.size == 3  # SimpleRNN(1): 1·(1 + 1 + 1)
    model = build_model((20, 20))
    assert [row["parameters"] for row in model.layers()] == [440, 820, 21] and model.flat.size == 1281
    assert [row["output_shape"] for row in model.layers()] == [[None, None, 20], [None, 20], [None, 1]]
    assert "Total params: 1,281" in model.summary() and "simple_rnn_2 (SimpleRNN)" in model.summary()
    deep = build_model((20, 20, 1), dense_head=False)
    assert [row["parameters"] for row in deep.layers()] == [440, 820, 22]
    seq = build_model((20, 20), outputs=10, every_step=True)
    assert seq.layers()[-1]["output_shape"] == [None, None, 10] and "TimeDistributed" in seq.summary()
    with pytest.raises(CharrnnError, match="top layer"):
        build_model((20,), outputs=2, dense_head=False)


def test_keras_initialisation():
    model = build_model((6, 6), seed=1)
    wh = model.params["Wh0"].astype(np.float64)
    for layer in range(2):
        np.testing.assert_allclose(wh[layer] @ wh[layer].T, np.eye(6), atol=1e-5)  # orthogonal
    assert not model.params["bh0"].any() and not model.params["by"].any()
    assert np.abs(model.params["Wx0"]).max() <= np.sqrt(6 / 7)  # Glorot-uniform limit, fan 1 + 6


def small_task(n=600, steps=21, ahead=1, seed=0, every=False):
    data = generate_data(n, steps, seed)
    window = steps - ahead
    return make_task(data.train, window, ahead, every), make_task(data.valid, window, ahead, every)


def test_fit_learns_and_beats_naive():
    (X, y), (Xv, yv) = small_task()
    model = build_model((8,), seed=0)
    history = model.fit(X, y, epochs=6, batch_size=16, validation_data=(Xv, yv), lr=5e-3, verbose=False)
    assert len(history.loss) == len(history.val_loss) == 6 and history.stop_reason == "epochs"
    assert history.loss[-1] < history.loss[0]
    naive = np.mean((naive_forecast(Xv, 1) - yv) ** 2)
    assert model.evaluate(Xv, yv)["mse"] < naive
    assert abs(model.evaluate(Xv, yv)["mse"] - history.val_loss[-1]) < 1e-6


def test_fit_is_deterministic_for_a_seed():
    (X, y), _ = small_task(200)
    runs = [build_model((4,), seed=2) for _ in range(2)]
    for model in runs:
        model.fit(X, y, epochs=2, seed=5, verbose=False)
    assert runs[0].flat.tobytes() == runs[1].flat.tobytes()


def test_fit_rejects_bad_shapes_and_values():
    (X, y), _ = small_task(100)
    model = build_model((4,))
    with pytest.raises(CharrnnError, match=r"\(batch, time steps, dimensionality\)"):
        model.fit(X[..., 0], y, verbose=False)
    with pytest.raises(CharrnnError, match="y must have shape"):
        model.fit(X, np.zeros((len(X), 2)), verbose=False)
    bad = X.copy()
    bad[3, 4, 0] = np.nan
    with pytest.raises(CharrnnError, match="non-finite"):
        model.fit(bad, y, verbose=False)
    with pytest.raises(CharrnnError, match="optimizer"):
        model.fit(X, y, optimizer="adamw", verbose=False)


def test_ctrl_c_stops_after_a_batch_with_consistent_weights(monkeypatch):
    (X, y), _ = small_task(200)
    model = build_model((4,))
    from charrnn.series import workspace

    calls = []
    original = workspace.SeriesWorkspace.loss_and_grads

    def interrupt_on_third(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(workspace.SeriesWorkspace, "loss_and_grads", interrupt_on_third)
    history = model.fit(X, y, epochs=3, verbose=False)
    assert history.stop_reason == "interrupted" and np.isfinite(model.flat).all()


def test_every_optimizer_trains():
    (X, y), _ = small_task(200)
    for optimizer, lr in (("adam", 5e-3), ("rmsprop", 1e-3), ("adagrad", 5e-2), ("sgd", 5e-2)):
        model = build_model((4,), seed=0)
        history = model.fit(X, y, epochs=3, optimizer=optimizer, lr=lr, verbose=False)
        assert history.loss[-1] < history.loss[0], optimizer


def test_normalisation_is_invisible_from_outside():
    """Series in the hundreds: standardised inside, predictions in the data's units."""
    (X, y), (Xv, yv) = small_task(400)
    big = build_model((8,), seed=0)
    history = big.fit(X * 100 + 500, y * 100 + 500, epochs=4, lr=5e-3, normalize="auto", verbose=False)
    assert big.offset == pytest.approx(float(np.mean(X * 100 + 500)), rel=1e-6) and big.scale > 10
    naive = np.mean((naive_forecast(Xv, 1) * 100 + 500 - (yv * 100 + 500)) ** 2)
    assert big.evaluate(Xv * 100 + 500, yv * 100 + 500)["mse"] < naive
    assert history.loss[-1] > 1.0  # reported in the data's units, not the normalised ones
    assert normalization(X, "auto", bounded=True) == (0.0, 1.0)  # already in [-1, 1]
    assert normalization(X * 3, "auto", bounded=True)[1] == pytest.approx(3 * np.abs(X).max())
    assert normalization(X, "none") == (0.0, 1.0)


def test_forecast_direct_then_iterated():
    (X, y), _ = small_task(100, ahead=3)
    model = build_model((5,), outputs=3, seed=1)
    direct = model.forecast(X)
    np.testing.assert_array_equal(direct, model.predict(X))
    longer = model.forecast(X, 7)
    assert longer.shape == (len(X), 7)
    np.testing.assert_allclose(longer[:, :3], direct, atol=1e-6)
    grown = np.concatenate([X, direct[:, :, None]], axis=1)  # round 2 = the model on the grown series
    np.testing.assert_allclose(longer[:, 3:6], model.predict(grown), atol=1e-5)
    multivariate = build_model((3,), inputs=2)
    with pytest.raises(CharrnnError, match="univariate"):
        multivariate.forecast(np.zeros((2, 5, 2)), 3)


def test_baselines():
    (X, y), _ = small_task(50)
    assert np.array_equal(naive_forecast(X, 4), np.repeat(X[:, -1, :1].astype(float), 4, axis=1))
    rng = np.random.default_rng(0)  # an exactly linear process is fitted exactly
    inputs = rng.standard_normal((100, 6, 1))
    weights = rng.standard_normal((6, 2))
    targets = inputs[..., 0] @ weights + 0.5
    linear = LinearForecaster.fit(inputs, targets)
    np.testing.assert_allclose(linear.predict(inputs), targets, atol=1e-10)


def test_checkpoint_round_trip(tmp_path):
    model = build_model((4, 4, 2), outputs=2, dense_head=False, seed=3)
    model.offset, model.scale = 0.25, 2.0
    save_model(tmp_path / "m.npz", model, {"task": {"window": 5}})
    loaded, meta = load_model(tmp_path / "m.npz")
    assert loaded.config == model.config and loaded.flat.tobytes() == model.flat.tobytes()
    assert (loaded.offset, loaded.scale) == (0.25, 2.0) and meta["task"] == {"window": 5}
    X = np.random.default_rng(0).standard_normal((3, 5, 1))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:  # no pickle anywhere
        assert set(archive.files) == set(model.params) | {"meta"}
    assert not list(tmp_path.glob("*.part"))


def test_bad_checkpoints(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for path, message in [(tmp_path / "missing.npz", "does not exist"), (tmp_path / "junk.npz", "not a readable")]:
        with pytest.raises(CharrnnError, match=message):
            load_model(path)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CharrnnError, match="not a series model"):
        load_model(tmp_path / "other.npz")
