"""Latent walks: the paths' geometry, and `tinygan interpolate` against the generator itself."""
import numpy as np
from PIL import Image

from conftest import requires_mnist
from test_cli import QUICK, run_main
from tinygan import backend, data, latent
from tinygan.trainer import load_generator


def test_paths_start_and_end_at_their_points_and_slerp_keeps_the_radius():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 100)), rng.standard_normal((5, 100))
    b *= (np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))[:, None]     # equal radii
    t = np.linspace(0, 1, 7)
    for path in (latent.lerp(a, b, t), latent.slerp(a, b, t)):
        np.testing.assert_allclose(path[:, 0], a, atol=1e-12)
        np.testing.assert_allclose(path[:, -1], b, atol=1e-12)
    radii = np.linalg.norm(latent.slerp(a, b, t), axis=-1)
    np.testing.assert_allclose(radii, np.linalg.norm(a, axis=1)[:, None].repeat(7, axis=1), rtol=1e-12)
    assert np.all(np.linalg.norm(latent.lerp(a, b, t)[:, 3], axis=-1) < 0.8 * radii[:, 3])   # the middle sags
    same = latent.slerp(a[:1], 2 * a[:1], t)                                  # parallel: the straight path
    np.testing.assert_allclose(same, latent.lerp(a[:1], 2 * a[:1], t), atol=1e-12)


@requires_mnist
def test_interpolate_draws_the_walks_with_the_runs_generator(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(capsys, "train", "--arch", "dcgan", "--epochs", 1, "--out", run, "--quiet", *QUICK)[0] == 0
    code, out, err = run_main(capsys, "interpolate", "--checkpoint", run, "--out", tmp_path / "walk.png",
                              "--rows", 2, "--steps", 5, "--seed", 4)
    assert code == 0, err
    assert "from the averaged generator of epoch 1" in out
    grid = np.asarray(Image.open(tmp_path / "walk.png"))
    assert grid.shape == (4 * 30 + 2, 5 * 30 + 2)                              # 2 pairs x 2 paths, 5 steps
    gan, config, _ = load_generator(run)
    z, walked = latent.walks(gan, 2, 5, seed=4)
    ends = data.to_uint8(backend.as_numpy(gan.generate(z[:, 0, [0, -1]].reshape(-1, 100))))
    pictures = latent.to_pictures(walked, config["pixel_range"])
    np.testing.assert_array_equal(pictures[:, :, [0, -1]].reshape(-1, 28, 28)[[0, 1, 4, 5]],
                                  ends)   # both end points of the first path of each pair
    np.testing.assert_array_equal(grid[2:30, 2:30], pictures[0, 0, 0])        # the grid's first tile
    code, _, err = run_main(capsys, "interpolate", "--checkpoint", run, "--out", tmp_path / "walk.gif")
    assert code == 0, err
    assert Image.open(tmp_path / "walk.gif").n_frames == 10 + 8                # there and back
    code, _, err = run_main(capsys, "interpolate", "--checkpoint", run, "--out", tmp_path / "walk.jpg")
    assert code == 2 and "--out must end in .png or .gif" in err
