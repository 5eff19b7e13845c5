_base_ = './msmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
# MS-MLP-B; drop path 0.5: the Swin / AS-MLP segmentation setting for this size (docs/papers.md, "Detection and
# segmentation recipes")
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.5,
        init_cfg=dict(checkpoint='https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/released_model/'
                      'msmlp_base_patch4/msmlp_base_patch4_ckpt_epoch299.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
