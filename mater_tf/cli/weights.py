"""`mater-tf weights convert-vggish|convert-vggm`: official weights -> Keras files, once."""

from __future__ import annotations

from pathlib import Path

from mater_tf.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser("weights", help="convert official VGGish / VGG-M weights to Keras files")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    vggish = actions.add_parser(
        "convert-vggish", help="vggish_model.ckpt or a TF-Hub VGGish folder -> .weights.h5"
    )
    vggish.add_argument("--from", dest="source", type=Path, required=True)
    vggish.add_argument("--out", type=Path, required=True, help="output file, ending in .weights.h5")
    vggm = actions.add_parser("convert-vggm", help="MatConvNet vgg-m-face-bn-fer.mat -> .keras model")
    vggm.add_argument("--from", dest="source", type=Path, required=True)
    vggm.add_argument("--out", type=Path, required=True, help="output file, ending in .keras")
    parser.set_defaults(handler=run)


def run(args) -> int:
    if not args.source.exists() and not Path(str(args.source) + ".index").exists():
        raise UserError(f"--from {args.source}: not found")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.action == "convert-vggish":
        from mater_tf.features.vggish import build_vggish, load_vggish_weights

        if not str(args.out).endswith(".weights.h5"):
            raise UserError(f"--out {args.out} must end in .weights.h5")
        model = load_vggish_weights(build_vggish("conv4_2"), args.source)
        model.save_weights(args.out)
    else:
        from mater_tf.features.vggm import convert_vggm

        if args.out.suffix != ".keras":
            raise UserError(f"--out {args.out} must end in .keras")
        convert_vggm(args.source).save(args.out)
    print(f"wrote {args.out}")
    return 0
